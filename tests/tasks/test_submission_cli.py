"""A submission from real `--mode=infer` runs of the CLI (slow: 4 CLI runs).

A tiny model trained for 10 steps on the shipped RTE decodes the fixture
test inputs of RTE and AX-b (AX-b with the RTE model, as T5 evaluates it)
with the flags `infer_flags` gives; the submission must then pair every
decode with its example and write one valid label per example. An eval of
AX-b's (labelled) test split scores it as docs/tasks.md says.
"""

import json
import os
import shutil

import pytest

from switch_mtf.tasks import paths
from switch_mtf.tasks import readers
from switch_mtf.tasks import submission
from tests.cli import cli_runs
from tests.tasks import superglue_testing

FIXTURES = superglue_testing.FIXTURES
MODEL_FLAGS = (
    "--module_import=switch_mtf.tasks",
    "--gin_file=dataset.gin",
    "--gin_file=models/switch_tiny.gin",
    "--gin_file=runs/cpu_tiny.gin",
    "--gin_param=MIXTURE_NAME='local_super_glue_rte'",
    "--gin_param=utils.run.train_steps=10",
)
ALLOWED = {"RTE": {"entailment", "not_entailment"},
           "AX-b": {"entailment", "not_entailment"}}


@pytest.mark.slow
def test_infer_decodes_become_leaderboard_files(tmp_path, monkeypatch):
  superglue_dir = tmp_path / "superglue"
  shutil.copytree(os.path.join(paths.SUPERGLUE_DIR, "RTE"),
                  superglue_dir / "RTE")
  shutil.copy(os.path.join(FIXTURES, "RTE", "test.jsonl"),
              superglue_dir / "RTE")
  shutil.copytree(os.path.join(FIXTURES, "AX-b"), superglue_dir / "AX-b")
  monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, str(superglue_dir))
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, MODEL_FLAGS, cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]

  names = list(ALLOWED)
  submission.write_inputs(str(tmp_path / "inputs"), names)
  for name in names:
    proc = cli_runs.run_cli(model_dir, [
        *MODEL_FLAGS,
        *submission.infer_flags(name, str(tmp_path / "inputs"),
                                str(tmp_path / "decodes"), 10),
        "--gin_param=Bitransformer.decode.max_decode_length=16",
    ], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-4000:]

  written = submission.write_submission(str(tmp_path / "decodes"), 10,
                                        str(tmp_path / "out"), names)
  for name, result in zip(names, written):
    with open(result.path) as f:
      rows = [json.loads(line) for line in f]
    examples = submission.examples_of_test_split(
        submission.leaderboard_task(name).task)
    assert [row["idx"] for row in rows] == [int(e["idx"]) for e in examples]
    assert {row["label"] for row in rows} <= ALLOWED[name]
    assert result.examples == len(rows) == len(examples)

  # AX-b's labelled file is scored by an eval of its test split.
  proc = cli_runs.run_cli(model_dir, [
      *MODEL_FLAGS,
      "--gin_file=eval.gin",
      "--gin_param=MIXTURE_NAME='local_super_glue_axb'",
      "--gin_param=utils.run.dataset_split='test'",
      "--gin_param=utils.run.eval_checkpoint_step=10",
      "--gin_param=Bitransformer.decode.max_decode_length=16",
  ], cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert "eval/local_super_glue_axb/matthews_corrcoef at step 10" in (
      proc.stdout)
