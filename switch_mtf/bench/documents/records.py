"""Committing a demo run folder's record: reports, plots, configs, commands.

A `make demo` / `make distill-demo` run folder holds checkpoints and event
files (too large to commit) beside small files that say what ran and what
it measured. `import_run` copies the small ones into a results folder and
adds record.json: the command, its wall-clock time if measured, the
commit, dirty flag and machine of the checkout that ran it (the git checkout
the run folder lives in, e.g. a fresh clone's output/demo, whose own tools
must import it) and the provenance the benchmarks store (code hash, gin
file texts), so that a record whose code has changed since is shown stale.
"""

import glob
import json
import os
import shlex
import shutil
import time
from typing import List, Optional

from switch_mtf.bench.common import provenance

RECORD_FILE = "record.json"
_FILES = ("report.md", "demo_config.json", "demo_timing.json",
          "distill_report.md", "distill_config.json")
_MODEL_FILES = ("operative_config.gin",)
# What determines a demo's numbers: the CLI runs' code and the workflows
# that drive them (tasks whole: the demo trains on wiki and fine-tunes on
# local SuperGLUE).
DEMO_CODE = provenance.CLI_CODE + ("workflows",)


class RecordError(ValueError):
  """The run folder is not a finished demo run."""


def import_run(run_dir: str, dest: str, command: str,
               wall_seconds: Optional[float] = None) -> List[str]:
  """Copies run_dir's record into dest; returns the files written."""
  if not os.path.exists(os.path.join(run_dir, "report.md")):
    raise RecordError(
        "%s has no report.md: it is not a finished `make demo` run folder "
        "(run the demo first, or point --run_dir at one)." % run_dir)
  here = provenance.git_state()
  run_state = provenance.git_state(run_dir)
  if run_state["commit"] and run_state["commit"] != here["commit"]:
    raise RecordError(
        "%s ran at commit %s, this checkout is at %s: import it with the "
        "tools of the checkout that ran it, so that its code hash and gin "
        "files are those of the run." % (run_dir, run_state["commit"][:10],
                                         (here["commit"] or "?")[:10]))
  if os.path.isdir(dest) and os.listdir(dest):
    if not os.path.exists(os.path.join(dest, RECORD_FILE)):
      raise RecordError(
          "%s is not empty and holds no %s: pass an empty folder or an "
          "earlier record to replace." % (dest, RECORD_FILE))
    shutil.rmtree(dest)  # an earlier record: replaced whole, no leftovers
  os.makedirs(dest, exist_ok=True)
  written = []
  names = [n for n in _FILES if os.path.exists(os.path.join(run_dir, n))]
  names += sorted(os.path.basename(p)
                  for p in glob.glob(os.path.join(run_dir, "*.png")))
  for name in names:
    shutil.copyfile(os.path.join(run_dir, name), os.path.join(dest, name))
    written.append(name)
  models = []
  for model_dir in sorted(glob.glob(os.path.join(run_dir, "*", ""))):
    model = os.path.basename(os.path.dirname(model_dir))
    files = [os.path.join(model_dir, n) for n in _MODEL_FILES
             if os.path.exists(os.path.join(model_dir, n))]
    files += sorted(glob.glob(os.path.join(model_dir, "commands", "*")))
    if not files:
      continue
    models.append(model)
    for path in files:
      relative = os.path.relpath(path, run_dir)
      os.makedirs(os.path.join(dest, os.path.dirname(relative)),
                  exist_ok=True)
      shutil.copyfile(path, os.path.join(dest, relative))
      written.append(relative)
  record = {"command": command, "wall_seconds": wall_seconds,
            "run_dir": run_dir, "models": models,
            "imported": time.strftime("%Y-%m-%d %H:%M:%S"),
            **run_state, "machine": provenance.machine(),
            "provenance": provenance.record(
                command, _gin_files_of_commands(dest, written), DEMO_CODE)}
  with open(os.path.join(dest, RECORD_FILE), "w") as f:
    json.dump(record, f, indent=1, sort_keys=True)
    f.write("\n")
  return written + [RECORD_FILE]


def _gin_files_of_commands(dest: str, written: List[str]) -> List[str]:
  """The --gin_file names of the recorded CLI commands, first use first."""
  names: List[str] = []
  for relative in written:
    if os.path.basename(os.path.dirname(relative)) != "commands":
      continue
    with open(os.path.join(dest, relative)) as f:
      for flag in provenance.gin_files_of_flags(shlex.split(f.read())):
        if flag not in names:
          names.append(flag)
  return names
