"""Gin configs read exactly as the t5 CLI reads them, without running it.

`t5_mesh_transformer` parses Mesh TF's defaults.gin, then the --gin_file
files, then the --gin_param bindings, with T5's and our gin folders on the
search path; `parse` does the same in-process, for tools and tests that
inspect a config (tools/model_stats.py). `run_arg` then tells what
`utils.run` would receive.
"""

import inspect
from typing import Any, Sequence

import gin
from mesh_tensorflow.transformer import utils
import pkg_resources

from switch_mtf.cli import gin_paths
from switch_mtf.cli import launcher


def parse(gin_files: Sequence[str], gin_params: Sequence[str]) -> None:
  """Parses gin the way the t5 CLI does; replaces the process's config."""
  gin.clear_config()
  # Files written for the CLI may bind T5's dataset plumbing or include T5's
  # gin files (dataset.gin, models/t5.1.1.base.gin, ...).
  launcher.import_t5_models_without_torch()
  import t5.models.mesh_transformer  # pylint: disable=g-import-not-at-top,unused-import
  gin_paths.add_gin_search_path()
  gin.add_config_file_search_path(
      pkg_resources.resource_filename("t5.models", "gin"))
  gin.parse_config_file(
      pkg_resources.resource_filename(utils.__name__, "gin/defaults.gin"))
  gin.parse_config_files_and_bindings(list(gin_files), list(gin_params))


def run_arg(name: str) -> Any:
  """The value `utils.run` would receive for `name` under the parsed gin."""
  try:
    value = gin.query_parameter("utils.run." + name)
  except ValueError:  # Unbound: the function's own default.
    return inspect.signature(utils.run).parameters[name].default
  if isinstance(value, gin.config.ConfigurableReference) and value.evaluate:
    return value.scoped_configurable_fn()
  return value
