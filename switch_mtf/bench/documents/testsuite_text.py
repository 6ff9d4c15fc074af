"""README's test-time section, from tests/module_durations.json.

`tools/run_tests.py --record` stores each module's time there (it is also
the order modules start in); the file holds no date, commit or load, so the
section says only what it holds: the recorded module times, their sum, and
what the sum implies for a run of two modules at a time.
"""

import json
import os
from typing import List

from switch_mtf.cli import progress

DURATIONS_FILE = os.path.join("tests", "module_durations.json")
# (the --marks key tools/run_tests.py stores under, the make target).
SUITES = (("not slow", "make test"), ("all", "make test-all"))
_LONGEST = 3


def module_times(repo_dir: str) -> List[str]:
  path = os.path.join(repo_dir, DURATIONS_FILE)
  if not os.path.exists(path):
    return ["No module times recorded yet: `python tools/run_tests.py "
            "--record` stores them in `%s`." % DURATIONS_FILE]
  with open(path) as f:
    stored = json.load(f)
  lines = [
      "Module times as the last `tools/run_tests.py --record` of each suite "
      "measured them (`%s`; two modules ran at a time; the file records "
      "no date, commit or load):" % DURATIONS_FILE, "",
      "| suite | modules recorded | module time summed | wall-clock at two "
      "at a time, at least | longest modules |", "|---|---|---|---|---|"]
  for marks, target in SUITES:
    durations = stored.get(marks)
    if not durations:
      continue
    total = sum(durations.values())
    longest = sorted(durations.items(), key=lambda kv: (-kv[1], kv[0]))
    lines.append("| `%s` | %d | %s | %s | %s |" % (
        target, len(durations), progress.format_duration(total),
        progress.format_duration(total / 2),
        ", ".join("`%s` %s" % (os.path.basename(module),
                               progress.format_duration(seconds))
                  for module, seconds in longest[:_LONGEST])))
  return lines
