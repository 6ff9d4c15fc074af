"""Runs the test suite: one pytest process per module, N modules at a time.

TensorFlow 1 graph-mode switches (eager off, resource variables, logical
devices) and gin's lock are process-wide, so every test module runs in its
own pytest process. Most of a module's time is single-threaded Python (graph
building, CLI start-up), so two at a time on two cores roughly halves the
wall time. Modules start longest first (from the durations recorded by the
last `--record` run), so the long ones do not finish last alone. With the
default marks, a module whose tests are all marked slow is not started.

  python tools/run_tests.py                    # make test: not slow, 2 jobs
  python tools/run_tests.py --marks=           # make test-all: everything
  python tools/run_tests.py --jobs=1 tests/layer -- -x -k decode
"""

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DURATIONS_FILE = os.path.join(REPO, "tests", "module_durations.json")
NO_TESTS_COLLECTED = 5  # pytest's exit code when every test is deselected


def find_modules(paths: Sequence[str]) -> List[str]:
  """test_*.py files under the given files or folders, repo-relative."""
  modules = []
  for path in paths:
    path = os.path.relpath(os.path.join(REPO, path), REPO)
    if os.path.isfile(os.path.join(REPO, path)):
      modules.append(path)
      continue
    for root, _, files in os.walk(os.path.join(REPO, path)):
      modules += [os.path.relpath(os.path.join(root, f), REPO)
                  for f in files if f.startswith("test_")
                  and f.endswith(".py")]
  if not modules:
    raise SystemExit("No test modules under %s." % ", ".join(paths))
  return sorted(set(modules))


def every_test_is_slow(path: str) -> bool:
  """Whether a module marks all its tests slow (read, not imported), so that
  `make test` need not start a process only to deselect them."""
  with open(path) as f:
    tree = ast.parse(f.read())
  tests = []
  for node in tree.body:
    if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "pytestmark"
        for t in node.targets) and _marks_slow(node.value):
      return True
    if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
      tests.append(node)
    elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
      tests += [n for n in node.body if isinstance(n, ast.FunctionDef)
                and n.name.startswith("test")]
  return bool(tests) and all(
      any(_marks_slow(d) for d in test.decorator_list) for test in tests)


def _marks_slow(node: ast.AST) -> bool:
  """Whether a decorator or pytestmark value is (or lists) the slow mark; a
  slow pytest.param inside a parametrize marks one case, not the test."""
  if isinstance(node, (ast.List, ast.Tuple)):
    return any(_marks_slow(element) for element in node.elts)
  return ast.unparse(node).endswith("mark.slow")


def load_durations(marks: str) -> Dict[str, float]:
  try:
    with open(DURATIONS_FILE) as f:
      return json.load(f).get(marks or "all", {})
  except FileNotFoundError:
    return {}


def save_durations(marks: str, durations: Dict[str, float]) -> None:
  try:
    with open(DURATIONS_FILE) as f:
      stored = json.load(f)
  except FileNotFoundError:
    stored = {}
  stored[marks or "all"] = {m: round(s, 1) for m, s in
                            sorted(durations.items())}
  with open(DURATIONS_FILE, "w") as f:
    json.dump(stored, f, indent=1, sort_keys=True)
    f.write("\n")


class _Running:
  """One module's pytest process, its log file and start time."""

  def __init__(self, module: str, marks: str, pytest_args: Sequence[str],
               work_dir: str):
    self.module = module
    name = module.replace(os.sep, "_")
    self.log_path = os.path.join(work_dir, name + ".log")
    self.log = open(self.log_path, "w")
    self.start = time.monotonic()
    # A basetemp per module: concurrent pytest processes never share one.
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-m", marks,
         "--basetemp=" + os.path.join(work_dir, name + ".tmp"),
         *pytest_args, module],
        cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)

  def finish(self) -> Tuple[float, int, str]:
    """(seconds, exit code, output) once the process has ended."""
    self.log.close()
    with open(self.log_path) as f:
      output = f.read()
    return time.monotonic() - self.start, self.proc.returncode, output


def _summary_line(output: str) -> str:
  lines = [l for l in output.strip().splitlines() if l.strip()]
  return lines[-1].strip("= ") if lines else "(no output)"


def run(modules: Sequence[str], marks: str, jobs: int,
        pytest_args: Sequence[str], verbose: bool) -> Dict[str, object]:
  """Runs the modules; returns {durations, failed, wall_seconds}."""
  known = load_durations(marks)
  # Longest first; modules without a record first of all (assume long).
  queue = sorted(modules, key=lambda m: -known.get(m, float("inf")))
  durations: Dict[str, float] = {}
  failed: List[str] = []
  start = time.monotonic()
  with tempfile.TemporaryDirectory(prefix="switch_mtf_tests_") as work_dir:
    running: List[_Running] = []
    while queue or running:
      while queue and len(running) < jobs:
        running.append(_Running(queue.pop(0), marks, pytest_args, work_dir))
      time.sleep(0.2)
      for job in [j for j in running if j.proc.poll() is not None]:
        running.remove(job)
        seconds, code, output = job.finish()
        ok = code in (0, NO_TESTS_COLLECTED)
        if code != NO_TESTS_COLLECTED:
          durations[job.module] = seconds
        if not ok:
          failed.append(job.module)
        done = len(modules) - len(queue) - len(running)
        print("[%d/%d %s] %-6s %-52s %6.1f s  %s" % (
            done, len(modules), _clock(time.monotonic() - start),
            "ok" if ok else "FAILED", job.module, seconds,
            _summary_line(output)), flush=True)
        if not ok or verbose:
          print(output, flush=True)
  return {"durations": durations, "failed": failed,
          "wall_seconds": time.monotonic() - start}


def _clock(seconds: float) -> str:
  return "%d:%02d" % divmod(int(seconds), 60)


def main(argv: Optional[List[str]] = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  pytest_args: List[str] = []
  if "--" in argv:
    split = argv.index("--")
    argv, pytest_args = argv[:split], argv[split + 1:]
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("paths", nargs="*",
                      help="test modules or folders (default: tests)")
  parser.add_argument("--marks", default="not slow",
                      help="pytest -m expression; empty = every test "
                      "(default: %(default)r)")
  parser.add_argument("--jobs", type=int, default=2,
                      help="modules run at a time (default: %(default)s)")
  parser.add_argument("--record", action="store_true",
                      help="store each module's time in "
                      "tests/module_durations.json (the start order); "
                      "whole suite only, no paths")
  parser.add_argument("--verbose", action="store_true",
                      help="print every module's output, not only failures")
  args = parser.parse_args(argv)
  if args.jobs < 1:
    parser.error("--jobs must be >= 1")
  if args.record and args.paths:
    # The record is the suite's: README's test times sum it, and a subset
    # would replace the marks' whole record.
    parser.error("--record times the whole suite and replaces its record in "
                 "tests/module_durations.json; run it without test paths "
                 "(given: %s)" % " ".join(args.paths))
  modules = find_modules(args.paths or ["tests"])
  slow_only = [m for m in modules if args.marks == "not slow"
               and every_test_is_slow(os.path.join(REPO, m))]
  modules = [m for m in modules if m not in slow_only]
  print("%d test modules, %d at a time, marks %r; load average %.2f%s" % (
      len(modules), args.jobs, args.marks, os.getloadavg()[0],
      "; %d more with only slow tests not started" % len(slow_only)
      if slow_only else ""), flush=True)
  result = run(modules, args.marks, args.jobs, pytest_args, args.verbose)
  if args.record:
    save_durations(args.marks, result["durations"])
    print("Recorded in %s; README's test times come from it: run "
          "`python tools/write_docs.py` and commit both." % os.path.relpath(
              DURATIONS_FILE, REPO))
  slowest = sorted(result["durations"].items(), key=lambda kv: -kv[1])[:5]
  print("Wall time %s; slowest: %s" % (
      _clock(result["wall_seconds"]),
      ", ".join("%s %.0f s" % kv for kv in slowest)))
  if result["failed"]:
    print("FAILED modules: " + " ".join(result["failed"]))
    return 1
  print("All %d modules passed." % len(modules))
  return 0


if __name__ == "__main__":
  sys.exit(main())
