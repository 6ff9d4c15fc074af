"""switch-mtf: Switch Transformers for Mesh TensorFlow.

Importing the package registers our gin configurables and puts our gin folder
on gin's search path, so that `--module_import=switch_mtf.tasks` (which
imports this package first) is all `t5_mesh_transformer` needs.
"""

from switch_mtf import gin_paths
from switch_mtf import layer  # registers the `Switch` gin configurable

gin_paths.add_gin_search_path()
