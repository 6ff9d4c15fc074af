"""Module names of the flat layout that gin files and commands still name.

Runs made before the package layout wrote `import switch_mtf.reliable` (and
others below) into their `operative_config.gin`, and stored commands run
`python -m switch_mtf.bench.precision_cli`. An import of such a name yields
the module it moved to, the very same module object, so each gin
configurable is registered once; `python -m` runs the moved module.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Optional, Sequence

# Old name -> new name: the modules that gin `import` statements, gin
# configurable references or commands of earlier runs name.
MOVED = {
    "switch_mtf.cpu_devices": "switch_mtf.cli.cpu_devices",
    "switch_mtf.launcher": "switch_mtf.cli.launcher",
    "switch_mtf.bench.precision_cli": "switch_mtf.cli.dtype_launcher",
    "switch_mtf.reliable": "switch_mtf.training.reliable",
    "switch_mtf.distill": "switch_mtf.training.distill",
}


class _AliasLoader(importlib.abc.Loader):
  """Loads an old name as the module it moved to."""

  def __init__(self, target: str):
    self._target = target

  def create_module(self, spec: importlib.machinery.ModuleSpec
                    ) -> types.ModuleType:
    return importlib.import_module(self._target)

  def exec_module(self, module: types.ModuleType) -> None:
    """The target module ran when it was imported in `create_module`."""

  def get_code(self, fullname: str) -> types.CodeType:
    """The moved module's code, for `python -m <old name>` (runpy)."""
    del fullname
    spec = importlib.util.find_spec(self._target)
    return spec.loader.get_code(self._target)


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
  """Finds the old names of `MOVED`, and nothing else."""

  def find_spec(self, fullname: str, path: Optional[Sequence[str]],
                target: Optional[types.ModuleType] = None
                ) -> Optional[importlib.machinery.ModuleSpec]:
    del path, target
    if fullname not in MOVED:
      return None
    target_spec = importlib.util.find_spec(MOVED[fullname])
    # `python -m` puts the origin in sys.argv[0]: the moved module's file.
    return importlib.machinery.ModuleSpec(
        fullname, _AliasLoader(MOVED[fullname]), origin=target_spec.origin)


def install() -> None:
  """Makes the old names importable (idempotent)."""
  if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
