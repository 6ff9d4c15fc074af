"""Document sections from the committed demo records (results/demo/).

The demo and distillation reports are written by the runs themselves
(workflows/report.py, workflows/distill_demo.py); these sections quote
their tables and findings and add the timing the record holds.
"""

import json
import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from switch_mtf.bench.common import provenance
from switch_mtf.bench.documents import records
from switch_mtf.cli import progress


class RunRecord:
  """One imported run folder: its reports and record.json."""

  def __init__(self, folder: str):
    self.folder = folder
    path = os.path.join(folder, records.RECORD_FILE)
    if not os.path.exists(path):
      raise FileNotFoundError(
          "%s is missing: record a finished demo with `python "
          "tools/record_run.py output/demo %s`." % (path, folder))
    with open(path) as f:
      self.record: Dict[str, Any] = json.load(f)

  def lines(self, name: str) -> List[str]:
    path = os.path.join(self.folder, name)
    if not os.path.exists(path):
      raise FileNotFoundError("%s is missing from the record; re-import the "
                              "run folder (tools/record_run.py)." % path)
    with open(path) as f:
      return f.read().splitlines()

  def json(self, name: str) -> Any:
    with open(os.path.join(self.folder, name)) as f:
      return json.load(f)


def section(lines: List[str], heading: str) -> List[str]:
  """The body under a Markdown heading, up to the next heading of its level
  or above; blank lines at either end dropped."""
  level = len(heading) - len(heading.lstrip("#"))
  try:
    start = lines.index(heading) + 1
  except ValueError:
    raise KeyError("no heading %r in the report" % heading) from None
  body = []
  for line in lines[start:]:
    hashes = len(line) - len(line.lstrip("#"))
    if hashes and hashes <= level and line[hashes:hashes + 1] == " ":
      break
    body.append(line)
  while body and not body[0].strip():
    body.pop(0)
  while body and not body[-1].strip():
    body.pop()
  return body


def _table_span(lines: List[str]) -> Tuple[int, int]:
  """Start and end index of the first Markdown table in lines."""
  start = next((i for i, l in enumerate(lines) if l.startswith("|")), None)
  if start is None:
    raise KeyError("the report has no table where one was expected; "
                   "re-import a finished run (tools/record_run.py)")
  end = start
  while end < len(lines) and lines[end].startswith("|"):
    end += 1
  return start, end


def _table(lines: List[str]) -> List[str]:
  start, end = _table_span(lines)
  return lines[start:end]


def _bullets(lines: List[str]) -> List[str]:
  return [l for l in lines if l.startswith("- ")]


def demo_runs(run: RunRecord) -> List[str]:
  return _table(section(run.lines("report.md"), "## Runs"))


def demo_comparison(run: RunRecord) -> List[str]:
  report = run.lines("report.md")
  heading = next((l for l in report if l.startswith("### ") and " vs " in l),
                 None)
  if heading is None:
    raise KeyError("report.md has no '### <sparse> vs <dense>' comparison")
  return _bullets(section(report, heading))


def demo_evaluation(run: RunRecord) -> List[str]:
  body = section(run.lines("report.md"), "## Evaluation")
  return [l for l in body if not l.startswith("![")]


def demo_router(run: RunRecord) -> List[str]:
  report = run.lines("report.md")
  out = []
  for heading in (l for l in report if l.startswith("## Router: ")):
    out += ["%s:" % heading[3:], ""] + _table(section(report, heading)) + [""]
  return out[:-1]


def _duration(seconds: Optional[float]) -> str:
  return "–" if seconds is None else progress.format_duration(seconds)


def demo_timing(run: RunRecord) -> List[str]:
  """Wall-clock of the whole command and of every phase, with the load."""
  record = run.record
  phases = run.json("demo_timing.json")
  cores = record["machine"]["cores"]
  finished = max((p["finished"] for p in phases), default="?")
  lines = [
      "`%s` at commit %s%s on %s (%d cores), finished %s." % (
          record["command"], (record["commit"] or "?")[:10],
          " (dirty)" if record["dirty"] else "",
          record["machine"]["cpu_model"], cores, finished[:10]),
      "", "| | wall-clock | CPU time | mean load average |", "|---|---|---|---|"]
  if record.get("wall_seconds") is not None:
    lines.append("| the whole command | %s | | |" % _duration(
        record["wall_seconds"]))
  for phase in phases:
    lines.append("| %s%s | %s | %s | %s |" % (
        phase["phase"], " (resumed)" if phase.get("resumed_from") else "",
        _duration(phase["seconds"]), _duration(phase.get("cpu_seconds")),
        "%.1f" % phase["load_average"] if phase.get("load_average")
        is not None else "–"))
  lines += ["", "A load average near %d is the run's own threads; above it, "
            "other work shared the machine." % cores]
  return lines + stale_note(run)


def stale_note(run: RunRecord) -> List[str]:
  """A warning line when the record's code or gin files changed since."""
  reasons = provenance.stale_reasons(run.record.get("provenance"))
  if not reasons:
    return []
  why = ("recorded without provenance (code hash, gin files)"
         if not run.record.get("provenance")
         else "; ".join(reasons) + " since this run")
  return ["", "**Stale**: %s; its numbers may differ from what `%s` gives "
          "today (re-run it and re-record it with tools/record_run.py)."
          % (why, run.record["command"])]


def distill_table(run: RunRecord) -> List[str]:
  return _table(run.lines("distill_report.md"))


# A sentence the distillation report writes (workflows/distill_demo.py)
# whose figure comes from measurements outside this repository.
_UNSOURCED_SPREAD = re.compile(
    r"At this size repeated Switch runs differ by .*?\(anchor measurements\)\.")


def distill_findings(run: RunRecord,
                     spread: Optional[Callable[[], str]] = None) -> List[str]:
  """The report's findings: the bullets between its table and the paper's.

  With spread (a phrase from the committed claim runs), the report's
  unsourced run-to-run spread is replaced by it, saying so; ValueError if
  the report no longer has that sentence as expected (its wording
  changed), rather than keeping an unsourced figure unnoticed.
  """
  report = run.lines("distill_report.md")
  after = report[_table_span(report)[1]:]
  stop = next((i for i, l in enumerate(after) if l.startswith("Paper,")),
              len(after))
  bullets = _bullets(after[:stop])
  if spread is None:
    return bullets
  replaced = [_UNSOURCED_SPREAD.subn(lambda _: (
      "How much repeated Switch runs differ at this size, from the "
      "committed claim runs: %s (the report quotes a figure from "
      "measurements outside this repository instead)." % spread()), bullet)
              for bullet in bullets]
  if not sum(count for _, count in replaced):
    raise ValueError(
        "%s: no finding matches %r, the run-to-run spread sentence whose "
        "figure comes from outside this repository; the report's wording "
        "changed (workflows/distill_demo.py): update _UNSOURCED_SPREAD in "
        "switch_mtf/bench/documents/runs_text.py" % (
            os.path.join(run.folder, "distill_report.md"),
            _UNSOURCED_SPREAD.pattern))
  return [bullet for bullet, _ in replaced]


def distill_timing(run: RunRecord) -> List[str]:
  took = [l for l in run.lines("distill_report.md")
          if l.startswith("- This invocation took")]
  return took + ["- Recorded at commit %s%s on %s (%d cores)." % (
      (run.record["commit"] or "?")[:10],
      " (dirty)" if run.record["dirty"] else "",
      run.record["machine"]["cpu_model"], run.record["machine"]["cores"])
                 ] + stale_note(run)
