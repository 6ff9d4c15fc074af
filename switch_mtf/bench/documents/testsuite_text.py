"""README's test-time section, from tests/module_durations.json.

`tools/run_tests.py --record` stores each module's time there (it is also
the order modules start in); the file holds no date, commit or load, and
goes stale as test modules are added, so the section says only what it
holds: how many of the suite's current modules it records (naming the
others), their times summed, and what that sum implies for a run of two
modules at a time.
"""

import importlib.util
import json
import os
import types
from typing import Dict, List, Sequence

from switch_mtf.cli import progress

DURATIONS_FILE = os.path.join("tests", "module_durations.json")
RUNNER = os.path.join("tools", "run_tests.py")
# (the --marks key tools/run_tests.py stores under, the make target).
SUITES = (("not slow", "make test"), ("all", "make test-all"))
_LONGEST = 3
_MAX_NAMED = 10  # more missing modules than this are counted, not named


def _runner(repo_dir: str) -> types.ModuleType:
  """repo_dir's tools/run_tests.py, which decides what each suite starts."""
  spec = importlib.util.spec_from_file_location(
      "run_tests_of_documents", os.path.join(repo_dir, RUNNER))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def current_modules(repo_dir: str) -> Dict[str, List[str]]:
  """{--marks key: the test modules that suite starts today}, as
  tools/run_tests.py finds them (`make test` skips modules whose tests are
  all slow)."""
  runner = _runner(repo_dir)
  every = runner.find_modules(["tests"])
  return {"all": every,
          "not slow": [m for m in every if not runner.every_test_is_slow(
              os.path.join(repo_dir, m))]}


def _missing(target: str, missing: Sequence[str]) -> str:
  if len(missing) > _MAX_NAMED:
    return "`%s`: %d modules" % (target, len(missing))
  return "`%s`: %s" % (target, ", ".join(
      "`%s`" % os.path.basename(m) for m in missing))


def module_times(repo_dir: str) -> List[str]:
  """Markdown lines: per suite (`make test`, `make test-all`), how many of
  its current test modules tests/module_durations.json records, their
  module times summed, the wall-clock floor of running them two at a time
  (half the sum, or the longest module if that is longer) and the longest
  modules; then the current modules the record lacks (named, or counted
  when many), since the sum leaves them out."""
  path = os.path.join(repo_dir, DURATIONS_FILE)
  if not os.path.exists(path):
    return ["No module times recorded yet: `python tools/run_tests.py "
            "--record` stores them in `%s`." % DURATIONS_FILE]
  with open(path) as f:
    stored = json.load(f)
  current = current_modules(repo_dir)
  lines = [
      "Module times as the last `tools/run_tests.py --record` of each suite "
      "measured them (`%s`; two modules ran at a time; the file records "
      "no date, commit or load). Only the recorded modules are summed, so a "
      "suite with unrecorded modules takes longer than this:"
      % DURATIONS_FILE, "",
      "| suite | current modules recorded | their module time summed | "
      "wall-clock at two at a time, at least | longest modules |",
      "|---|---|---|---|---|"]
  missing = []
  for marks, target in SUITES:
    recorded = stored.get(marks) or {}
    durations = {m: s for m, s in recorded.items() if m in current[marks]}
    absent = sorted(set(current[marks]) - set(durations))
    if absent:
      missing.append(_missing(target, absent))
    if not durations:
      lines.append("| `%s` | 0 of %d | – | – | – |" % (
          target, len(current[marks])))
      continue
    total = sum(durations.values())
    longest = sorted(durations.items(), key=lambda kv: (-kv[1], kv[0]))
    lines.append("| `%s` | %d of %d | %s | %s | %s |" % (
        target, len(durations), len(current[marks]),
        progress.format_duration(total),
        progress.format_duration(max(total / 2, longest[0][1])),
        ", ".join("`%s` %s" % (os.path.basename(module),
                               progress.format_duration(seconds))
                  for module, seconds in longest[:_LONGEST])))
  if missing:
    lines += ["", "Current modules without a recorded time (not in the sums; "
              "`python tools/run_tests.py --record` for `make test`, with "
              "`--marks=` for `make test-all`, records them): %s." %
              "; ".join(missing)]
  return lines
