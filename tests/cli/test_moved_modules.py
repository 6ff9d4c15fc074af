"""Names of the flat layout keep working: old operative configs and commands.

The fixtures are the operative configs of runs made before the package
layout (testdata/SOURCE.md); users pass such files back with --gin_file.
"""

import os
import subprocess
import sys

import gin
import pytest

from switch_mtf.cli import gin_config
from switch_mtf.cli import moved_modules
from switch_mtf.training import checkpoint_guard
from tests.cli import cli_runs

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")
RELIABLE = os.path.join(TESTDATA,
                        "pre_layout_reliable_cpu4_ep.operative_config.gin")
DISTILL = os.path.join(TESTDATA, "pre_layout_distill.operative_config.gin")


def test_an_old_name_is_the_moved_module_itself():
  import switch_mtf.reliable as old  # pylint: disable=g-import-not-at-top
  from switch_mtf.training import reliable  # pylint: disable=g-import-not-at-top
  assert old is reliable
  assert sys.modules["switch_mtf.reliable"] is reliable


def test_every_old_name_imports_its_target():
  for old, new in moved_modules.MOVED.items():
    module = __import__(old, fromlist=[""])
    assert module is sys.modules[new], old


def test_names_that_never_existed_still_fail():
  with pytest.raises(ModuleNotFoundError):
    __import__("switch_mtf.no_such_module")


def test_old_reliable_operative_config_parses_to_the_moved_code():
  gin_config.parse([RELIABLE], [])
  from switch_mtf.training import reliable  # pylint: disable=g-import-not-at-top
  train_model_fn = gin_config.run_arg("train_model_fn")
  assert train_model_fn.configurable.wrapper is reliable.reliable_train_model
  assert gin_config.run_arg("mesh_devices") == ["cpu:%d" % i for i in range(4)]
  layers = gin.query_parameter("encoder/transformer.make_layer_stack.layers")
  assert "@switch_mtf.Switch" in str(layers)


def test_old_distillation_operative_config_parses_to_the_moved_code():
  gin_config.parse([DISTILL], [])
  from switch_mtf.training import distill  # pylint: disable=g-import-not-at-top
  teacher_cls = gin.query_parameter(
      "teacher/make_bitransformer.bitransformer_cls")
  assert teacher_cls.configurable.wrapper is distill.CheckpointedTeacher


def test_old_module_runs_with_python_dash_m():
  # Stored claim commands run `python -m switch_mtf.bench.precision_cli`.
  proc = subprocess.run(
      [sys.executable, "-m", "switch_mtf.bench.precision_cli",
       "--activation_dtype=float16"], capture_output=True, text=True,
      check=False, timeout=300)
  assert proc.returncode != 0
  assert "--activation_dtype=float16 is not supported" in proc.stderr


@pytest.mark.slow
def test_old_operative_config_trains_through_the_cli(tmp_path):
  """A pre-layout run's whole config, passed back to today's CLI."""
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, ["--module_import=switch_mtf.tasks",
                                      "--gin_file=" + RELIABLE],
                          cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert cli_runs.checkpoint_steps(model_dir) == [0, 2]
  # The guarded loop ran: it marks the run's start in the model dir.
  assert os.path.exists(
      os.path.join(model_dir, checkpoint_guard.RUN_START_FILE))
  operative = open(os.path.join(model_dir, "operative_config.gin")).read()
  assert "run.train_model_fn = @switch_mtf.reliable_train_model" in operative
