"""The activation-dtype launcher: its flag, and its patch of `utils.run`.

mesh_transformer_main binds activation_dtype = float32 just before it calls
utils.run; the launcher's wrapper must win over that binding at call time.
"""

import gin
from mesh_tensorflow.transformer import utils
import pytest

from switch_mtf.cli import dtype_launcher
from switch_mtf.cli import gin_config

_DTYPE = "utils.get_variable_dtype.activation_dtype"


def test_flag_is_split_off_the_cli_flags():
  assert dtype_launcher.split_dtype_flag(
      ["prog", "--activation_dtype=bfloat16", "--model_dir=m"]) == (
          "bfloat16", ["prog", "--model_dir=m"])
  assert dtype_launcher.split_dtype_flag(["prog", "--x=1"]) == (
      "float32", ["prog", "--x=1"])
  with pytest.raises(SystemExit, match="float16 is not supported"):
    dtype_launcher.split_dtype_flag(["--activation_dtype=float16"])


def test_the_dtype_is_bound_when_utils_run_is_called(monkeypatch):
  seen = []
  monkeypatch.setattr(utils, "run",
                      lambda *a, **k: seen.append(gin.query_parameter(_DTYPE)))
  run = dtype_launcher._run_with_dtype("bfloat16")  # pylint: disable=protected-access
  gin.clear_config()
  # What the CLI does off TPU, after parsing every gin file.
  gin.bind_parameter(_DTYPE, "float32")
  gin.finalize()  # the wrapper must bind through a locked config
  try:
    run(tpu_job_name=None)
  finally:
    gin.clear_config(clear_constants=True)
  assert seen == ["bfloat16"]


def test_the_patched_run_keeps_the_signature_the_guarded_run_reads(
    monkeypatch):
  # runs/reliable.gin reads utils.run's own defaults (gin_config.run_arg);
  # a bare (*args, **kwargs) wrapper stopped every bfloat16 guarded run
  # before step 1 with KeyError: 'mesh_devices'.
  monkeypatch.setattr(utils, "run", dtype_launcher._run_with_dtype(  # pylint: disable=protected-access
      "bfloat16"))
  gin.clear_config()
  try:
    assert gin_config.run_arg("mesh_devices") is None
    assert gin_config.run_arg("iterations_per_loop") == 100
  finally:
    gin.clear_config(clear_constants=True)
