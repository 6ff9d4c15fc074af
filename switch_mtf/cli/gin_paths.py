"""Where our gin files live, and putting that folder on gin's search path.

The top-level `gin/` folder is installed as `switch_mtf/gin/` (setup.py maps
it), so `--gin_file=models/switch_tiny.gin` resolves from any working
directory once `switch_mtf` is imported.
"""

import os
from typing import List

import gin

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Installed wheel: switch_mtf/gin. Editable install or source tree: ../gin.
_CANDIDATES = (os.path.join(_PACKAGE_DIR, "gin"),
               os.path.join(os.path.dirname(_PACKAGE_DIR), "gin"))
_added_paths = set()
# Where tools write runs by default. Named like no gin folder: when a folder
# `runs/` is on sys.path (the working directory under pytest or `python -m`),
# gin reads "runs/x.gin" as a resource of a Python package `runs` and fails.
OUTPUT_ROOT = "output"
# The guarded run (switch_mtf.training.reliable), which every run our tools
# start uses unless asked not to.
GUARDED_RUN_GIN = "runs/reliable.gin"


# The `--unguarded` flag's help, the same in every tool that has it.
UNGUARDED_HELP = (
    "train with Mesh TF's plain train_model instead of the guarded run "
    "(%s): no pre-flight checks, unseeded weight init, and a resumed run "
    "rereads its data from the start" % GUARDED_RUN_GIN)


def guard_flags(guarded: bool) -> List[str]:
  """CLI flags for the guarded run; they go after the run's other gin files
  (reliable.gin binds utils.run's training function)."""
  return ["--gin_file=" + GUARDED_RUN_GIN] if guarded else []


def gin_dir() -> str:
  """Returns the absolute path of our gin folder."""
  for path in _CANDIDATES:
    if os.path.isdir(os.path.join(path, "models")):
      return path
  raise FileNotFoundError(
      "switch-mtf's gin folder was not found in %s; reinstall the package "
      "with `make setup` (or `pip install -e .`)." % " or ".join(_CANDIDATES))


def add_gin_search_path() -> str:
  """Adds our gin folder to gin's search path (idempotent); returns it."""
  path = gin_dir()
  if path not in _added_paths:
    gin.add_config_file_search_path(path)
    _added_paths.add(path)
  return path
