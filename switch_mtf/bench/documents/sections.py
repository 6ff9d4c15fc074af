"""Which generated section each marker names, and the documents that hold
them; `write` fills them all in (or reports the ones that drifted)."""

import functools
import json
import os
from typing import Callable, Dict, List, Sequence

from switch_mtf.bench.common import invocations
from switch_mtf.bench.documents import checkpoints_text
from switch_mtf.bench.documents import claims_text
from switch_mtf.bench.documents import headline_text
from switch_mtf.bench.documents import markers
from switch_mtf.bench.documents import runs_text
from switch_mtf.bench.documents import speed_text
from switch_mtf.bench.documents import testsuite_text
from switch_mtf.cli import progress

# The documents with generated sections, relative to the repository.
DOCUMENTS = ("README.md", "docs/results.md", "docs/demo.md",
             "docs/distill.md", "docs/cluster.md", "docs/checkpoints.md")
DEMO_RECORD = os.path.join("results", "demo")


def _completed(entry: Dict) -> bool:
  # Recorded before "outcome" existed: only completed invocations were.
  return entry.get("outcome", "completed") == "completed"


def _outcome(entry: Dict) -> str:
  """Like `**interrupted** (SIGTERM)`, fit for a table cell."""
  error = " ".join((entry.get("error") or "").split()).replace("|", "/")
  return "**%s**%s" % (entry["outcome"], " (%s)" % (
      error if len(error) <= 80 else error[:77] + "...") if error else "")


def _invocations(results_dir: str) -> List[str]:
  """Every recorded `tools/bench.py` invocation, with its wall-clock.

  An interrupted or failed invocation is listed with its outcome and what
  it stored; its time is never taken for a finished part's.
  """
  lines = ["| invocation | parts | wall-clock | results stored | commit | "
           "other processes' CPU share (mean / max) |",
           "|---|---|---|---|---|---|"]
  whole = False
  unfinished = []
  for root in (results_dir, os.path.join(results_dir, "quick")):
    for entry in invocations.load(root):
      load = entry["load"]
      whole |= entry["whole_bench"] and _completed(entry)
      if not _completed(entry):
        unfinished.append(entry)
      lines.append("| `%s` (%s) | %s | %s%s | %d | %s%s | %.1f%% / %.1f%% |"
                   % (entry["command"], entry["started"][:10],
                      ", ".join(entry["parts"]),
                      progress.format_duration(entry["wall_seconds"]),
                      "" if _completed(entry) else " " + _outcome(entry),
                      entry["results_stored"], (entry["commit"] or "?")[:10],
                      " (dirty)" if entry["dirty"] else "",
                      100 * load["other_cpu_share_mean"],
                      100 * load["other_cpu_share_max"]))
  if len(lines) == 2:
    lines = ["No `tools/bench.py` invocation has recorded its wall-clock "
             "time yet."]
  if unfinished:
    lines += ["", "%d invocation%s did not finish (marked **interrupted** "
              "or **failed** above): %s of wall-clock in all. The results "
              "they stored count below with their own times; the rest of "
              "that time was lost work, not a piece of `make bench`." % (
                  len(unfinished), "" if len(unfinished) == 1 else "s",
                  progress.format_duration(
                      sum(e["wall_seconds"] for e in unfinished)))]
  if not whole:
    lines += ["", "The whole `make bench` (every part, no filter, in one "
              "invocation) has not been timed yet."] + _measured_pieces(
                  results_dir)
  return lines


_SPEED_PARTS = {"speed", "models", "paper", "profile", "cluster"}
_RUN_PARTS = (("claims", "claims"), ("headline", "headline"))


def _measured_pieces(results_dir: str) -> List[str]:
  """What the stored results measured of their own time, part by part.

  The speed parts: the latest completed invocation that ran all of them.
  The CLI runs: each stored run's training and evaluation wall-clock,
  summed (each under the load recorded with it). A sum of measurements,
  not a model.
  """
  pieces, total = [], 0.0
  speed = [e for e in invocations.load(results_dir)
           if _SPEED_PARTS <= set(e["parts"]) and not e["filtered"]
           and _completed(e)]
  if speed:
    seconds = speed[-1]["wall_seconds"]
    total += seconds
    pieces.append("the speed parts in one invocation, %s (%s)" % (
        progress.format_duration(seconds), speed[-1]["started"][:10]))
  for part, folder in _RUN_PARTS:
    path = os.path.join(results_dir, folder, "runs.json")
    if not os.path.exists(path):
      continue
    with open(path) as f:
      entries = json.load(f)["entries"].values()
    seconds = sum(e.get("train_seconds", 0) + e.get("eval_seconds", 0)
                  for e in entries)
    if seconds:
      total += seconds
      pieces.append("the %d stored %s runs, %s summed (training + "
                    "evaluation of each, under its recorded load)" % (
                        len(entries), part, progress.format_duration(seconds)))
  if not pieces:
    return []
  return ["", "Measured pieces of it: %s; together %s (a sum of run "
          "times: runs that trained side by side each count in full)." % (
              "; ".join(pieces), progress.format_duration(total))]


class Sections:
  """Renders each named section from the result files under repo_dir."""

  def __init__(self, repo_dir: str):
    self.repo_dir = repo_dir
    self.results_dir = os.path.join(repo_dir, "results")

  @functools.cached_property
  def speed(self) -> speed_text.SpeedResults:
    return speed_text.SpeedResults(os.path.join(self.results_dir, "speed"))

  @functools.cached_property
  def claims(self) -> claims_text.ClaimResults:
    return claims_text.ClaimResults(os.path.join(self.results_dir, "claims"))

  @functools.cached_property
  def headline(self) -> headline_text.HeadlineResults:
    return headline_text.HeadlineResults(self.results_dir)

  @functools.cached_property
  def demo(self) -> runs_text.RunRecord:
    return runs_text.RunRecord(os.path.join(self.repo_dir, DEMO_RECORD))

  def renderers(self) -> Dict[str, Callable[[], Sequence[str]]]:
    s = speed_text
    c = claims_text
    r = runs_text
    return {
        "speed-layers": lambda: s.layer_table(self.speed),
        "speed-layers-short": lambda: s.short_layer_table(self.speed),
        "speed-targets": lambda: s.targets(self.speed),
        "speed-sweeps": lambda: s.sweeps(self.speed),
        "speed-models": lambda: s.model_table(self.speed),
        "speed-experts": lambda: s.experts_doubling(self.speed),
        "speed-paper": lambda: s.paper_table(self.speed),
        "speed-paper-summary": lambda: s.paper_summary(self.speed),
        "speed-profile": lambda: s.profile_lines(self.speed),
        "speed-profile-gap": lambda: s.profile_gap(self.speed),
        "speed-provenance": lambda: s.provenance_lines(self.speed),
        "cluster-traffic": lambda: s.cluster_traffic(self.speed),
        "claims-sample-efficiency":
            lambda: c.sample_efficiency_table(self.claims),
        "claims-sample-efficiency-findings":
            lambda: c.sample_efficiency_findings(self.claims),
        "claims-ablations": lambda: c.ablation_table(self.claims),
        "claims-ablation-findings": lambda: c.ablation_findings(self.claims),
        "claims-paper": c.paper_ablations,
        "claims-appendix": lambda: c.appendix_ablations(self.claims),
        "claims-appendix-summary":
            lambda: c.appendix_summary(self.claims),
        "claims-recipe": lambda: c.recipe_table(self.claims),
        "claims-finetune": lambda: c.finetune_table(self.claims),
        "claims-steps": lambda: c.steps_per_second(self.claims),
        "claims-provenance": lambda: c.provenance_lines(self.claims),
        "bench-time": lambda: _invocations(self.results_dir),
        "test-times": lambda: testsuite_text.module_times(self.repo_dir),
        **headline_text.sections(lambda: self.headline),
        "demo-runs": lambda: r.demo_runs(self.demo),
        "demo-comparison": lambda: r.demo_comparison(self.demo),
        "demo-evaluation": lambda: r.demo_evaluation(self.demo),
        "demo-router": lambda: r.demo_router(self.demo),
        "demo-timing": lambda: r.demo_timing(self.demo),
        "distill-table": lambda: r.distill_table(self.demo),
        "distill-findings": lambda: r.distill_findings(
            self.demo, spread=lambda: c.seed_spread(self.claims)),
        "distill-timing": lambda: r.distill_timing(self.demo),
        "checkpoints-conversion":
            lambda: checkpoints_text.conversion(self.results_dir),
        "checkpoints-upcycling":
            lambda: checkpoints_text.upcycling_lines(self.results_dir),
    }


def write(repo_dir: str, check: bool = False,
          documents: Sequence[str] = DOCUMENTS) -> List[str]:
  """Fills every document's sections; returns the documents that changed.

  With check, writes nothing: the returned documents are those whose
  committed text differs from what would be written.
  """
  render = Sections(repo_dir).renderers()
  filled = {}
  for name in documents:  # all rendered before any is written
    with open(os.path.join(repo_dir, name)) as f:
      text = f.read()
    new = markers.fill(text, render, name)
    if new != text:
      filled[name] = new
  if not check:
    for name, new in filled.items():
      path = os.path.join(repo_dir, name)
      with open(path + ".tmp", "w") as f:
        f.write(new)
      os.replace(path + ".tmp", path)
  return list(filled)
