"""`switch_mtf_transformer`: the `t5_mesh_transformer` CLI without torch.

`t5_mesh_transformer` is `t5.models.mesh_transformer_main:console_entry_point`.
Its package `t5.models` imports `hf_model` in `__init__`, which imports torch
at module level; the only torch that installs beside TensorFlow 2.12 from PyPI
is a 4.5 GB CUDA build. This launcher runs the very same `main` with the very
same flags, but loads `t5.models` as a bare package (its submodules import
normally) so the PyTorch model wrapper, which Mesh TF runs never use, is not
imported. With torch installed, `t5_mesh_transformer` itself works the same.
"""

import importlib.util
import os
import sys
import types


def import_t5_models_without_torch() -> None:
  """Registers `t5.models` as a package without running its `__init__`."""
  if "t5.models" in sys.modules:
    return
  import t5  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec("t5.models")
  package = types.ModuleType("t5.models")
  package.__path__ = list(spec.submodule_search_locations)
  package.__file__ = spec.origin
  package.__package__ = "t5.models"
  package.__spec__ = spec
  sys.modules["t5.models"] = package
  t5.models = package


def console_entry_point() -> None:
  """Runs `t5.models.mesh_transformer_main` exactly as `t5_mesh_transformer`."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  import_t5_models_without_torch()
  from t5.models import mesh_transformer_main  # pylint: disable=g-import-not-at-top
  mesh_transformer_main.console_entry_point()


if __name__ == "__main__":
  console_entry_point()
