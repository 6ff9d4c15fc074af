"""The t5 CLI runs our tasks and gin files on CPU: train, eval and infer.

One tiny model is trained once (module fixture) and reused by eval and infer,
to keep the suite short. Runs start in a temporary directory, not the repo,
so they prove that the installed package resolves its gin files and tasks.
"""

import glob
import importlib.util
import os

import pytest

from tests.cli import cli_runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("cli")
  model_dir = str(workdir / "model")
  proc = cli_runs.run_cli(model_dir, cli_runs.TINY_TRAIN_FLAGS, cwd=str(workdir))
  assert proc.returncode == 0, proc.stdout[-4000:]
  return workdir, model_dir, proc.stdout


def test_train_writes_checkpoints_config_and_events(trained):
  _, model_dir, log = trained
  assert cli_runs.checkpoint_steps(model_dir) == [0, 10, 20]
  assert "Loss for final step" in log
  operative = open(os.path.join(model_dir, "operative_config.gin")).read()
  assert "smoke_span_corruption" in operative
  assert glob.glob(os.path.join(model_dir, "events.out.tfevents.*"))


def test_launcher_does_not_import_torch(trained):
  # The lean venv has no torch at all; with torch installed (CI), the
  # launcher still must not load it, or it would not be torch-free.
  _, _, log = trained
  assert "ModuleNotFoundError: No module named 'torch'" not in log
  probe = ("import sys; import switch_mtf.launcher as l; "
           "l.import_t5_models_without_torch(); "
           "from t5.models import mesh_transformer_main; "
           "print('torch' in sys.modules)")
  import subprocess, sys  # pylint: disable=g-import-not-at-top,multiple-statements
  out = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                       text=True, check=True).stdout.strip().splitlines()[-1]
  assert out == "False"


def test_perplexity_eval_on_validation_split(trained):
  workdir, model_dir, _ = trained
  proc = cli_runs.run_cli(model_dir, [
      *cli_runs.TINY_TRAIN_FLAGS,
      "--gin_file=perplexity_eval.gin",
      "--gin_param=utils.run.dataset_split='validation'",
      "--gin_param=utils.run.eval_checkpoint_step=20",
      "--gin_param=utils.run.perplexity_eval_steps=2",
  ], cwd=str(workdir))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert "neg_log_perplexity" in proc.stdout


def test_eval_decodes_validation_split(trained):
  workdir, model_dir, _ = trained
  proc = cli_runs.run_cli(model_dir, [
      *cli_runs.TINY_TRAIN_FLAGS,
      "--gin_file=eval.gin",
      "--gin_param=MIXTURE_NAME='smoke_next_line'",
      "--gin_param=utils.run.dataset_split='validation'",
      "--gin_param=utils.run.eval_checkpoint_step=20",
      "--gin_param=utils.run.batch_size=('sequences_per_batch', 8)",
      "--gin_param=mesh_eval_dataset_fn.num_eval_examples=16",
      "--gin_param=Bitransformer.decode.max_decode_length=16",
  ], cwd=str(workdir))
  assert proc.returncode == 0, proc.stdout[-4000:]
  eval_dir = os.path.join(model_dir, "validation_eval")
  targets = open(os.path.join(eval_dir, "smoke_next_line_targets")).read()
  predictions = open(
      os.path.join(eval_dir, "smoke_next_line_20_predictions")).read()
  assert len(targets.splitlines()) == len(predictions.splitlines()) == 16
  assert "smoke_next_line/sequence_accuracy at step 20" in proc.stdout


@pytest.mark.slow  # a third decoding CLI process; eval decodes in make test
def test_infer_from_file(trained):
  workdir, model_dir, _ = trained
  inputs = workdir / "inputs.txt"
  inputs.write_text("To be, or not to be\nShall I compare thee\n")
  outputs = workdir / "outputs.txt"
  proc = cli_runs.run_cli(model_dir, [
      *cli_runs.TINY_TRAIN_FLAGS,
      "--gin_file=infer.gin",
      "--gin_param=input_filename='%s'" % inputs,
      "--gin_param=output_filename='%s'" % outputs,
      "--gin_param=infer_checkpoint_step=20",
      "--gin_param=utils.run.batch_size=('sequences_per_batch', 8)",
      "--gin_param=Bitransformer.decode.max_decode_length=16",
  ], cwd=str(workdir))
  assert proc.returncode == 0, proc.stdout[-4000:]
  decoded = glob.glob(str(outputs) + "*")
  assert decoded, proc.stdout[-2000:]
  assert len(open(decoded[0]).read().splitlines()) == 2


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="stock t5_mesh_transformer needs torch "
                    "(`make setup-torch`); CI installs it")
@pytest.mark.slow  # imports torch and trains: the whole suite runs it
def test_stock_t5_mesh_transformer_trains(tmp_path):
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, [
      *cli_runs.TINY_TRAIN_FLAGS, "--gin_param=utils.run.train_steps=10"],
      cwd=str(tmp_path), executable=cli_runs.STOCK_CLI)
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert cli_runs.checkpoint_steps(model_dir) == [0, 10]
