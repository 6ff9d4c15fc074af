"""switch-mtf: Switch Transformers for Mesh TensorFlow.

Importing the package registers the `Switch` gin configurable, puts our gin
folder on gin's search path (so `--module_import=switch_mtf.tasks`, which
imports this package first, is all `t5_mesh_transformer` needs) and keeps the
module names of the flat layout before the packages importable
(`cli/moved_modules.py`).

Packages, lowest first; each may import only those below it, as its own
docstring says (tests/project/test_import_layers.py checks it):
  layer      the Switch layer of the paper (router, capacity, dispatch, ...)
  tasks      seqio tasks, vocabularies and the shipped data
  cli        running `t5_mesh_transformer`: launcher, gin, checkpoints, phases
  training   what gin plugs into the CLI's training: guarded runs, distillation
  cluster    a CLI run whose mesh spans TensorFlow server tasks (workers)
  analysis   what a config costs and whether its layout fits (no training)
  workflows  demo, distillation demo, sweeps, TPU commands, reports
  checkpoints  released checkpoints in and out (HF, T5X), sparse upcycling
  bench      speed benchmarks and the paper's claims at small scale

May import: switch_mtf.layer, switch_mtf.cli (registration, gin paths).
"""

from switch_mtf.cli import gin_paths
from switch_mtf.cli import moved_modules
from switch_mtf.layer import Switch  # registers the gin configurable

gin_paths.add_gin_search_path()
moved_modules.install()
