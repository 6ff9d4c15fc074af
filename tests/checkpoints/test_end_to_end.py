"""Released-model workflow end to end: convert, fine-tune, evaluate, export.

The README's commands at toy size: a tiny Hugging Face Switch model is
converted with tools/convert_checkpoint.py, fine-tuned a few steps on the
embedded SuperGLUE RTE task with `switch_mtf_transformer` and our
fine-tuning recipe (finetune/constant_lr.gin + runs/cpu_finetune.gin),
evaluated with t5's eval.gin (the task's accuracy), and exported back to a
Hugging Face folder from the fine-tuned dir (its operative_config.gin),
which transformers loads when torch is installed.
"""

import importlib.util
import os

import numpy as np
import pytest

from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import mtf_checkpoint
from tests.checkpoints import hf_fixtures
from tests.checkpoints import test_bad_input
from tests.checkpoints import tool_help
from tests.cli import cli_runs

STEPS = 4


@pytest.mark.slow
def test_convert_finetune_evaluate_export(tmp_path):
  hf_dir = str(tmp_path / "switch-tiny-hf")
  hf_fixtures.write_synthetic(hf_dir, test_bad_input.ARCH, hf_names.SWITCH,
                              test_bad_input.CONFIG)
  tool = tool_help.load_tool("convert_checkpoint")
  converted = str(tmp_path / "converted")
  assert tool.main(["hf-to-mtf", hf_dir, converted]) == 0

  finetuned = str(tmp_path / "finetuned")
  flags = [
      "--module_import=switch_mtf.tasks",
      "--gin_file=dataset.gin",
      "--gin_file=%s/model.gin" % converted,
      "--gin_file=finetune/constant_lr.gin",
      "--gin_file=runs/cpu_finetune.gin",
      "--gin_param=MIXTURE_NAME = 'local_super_glue_rte'",
      "--gin_param=utils.run.sequence_length = "
      "{'inputs': 64, 'targets': 8}",
  ]
  train = cli_runs.run_cli(finetuned, flags + [
      "--gin_param=utils.run.init_checkpoint = '%s/model.ckpt-0'" % converted,
      "--gin_param=utils.run.train_steps = %d" % STEPS,
      "--gin_param=utils.run.save_checkpoints_steps = %d" % STEPS,
      "--gin_param=utils.run.iterations_per_loop = %d" % STEPS,
  ], cwd=str(tmp_path))
  assert train.returncode == 0, train.stdout[-4000:]
  assert cli_runs.checkpoint_steps(finetuned)[-1] == STEPS

  evaluate = cli_runs.run_cli(finetuned, flags + [
      "--gin_file=eval.gin",
      "--gin_param=utils.run.dataset_split = 'validation'",
      "--gin_param=utils.run.eval_checkpoint_step = %d" % STEPS,
      "--gin_param=mesh_eval_dataset_fn.num_eval_examples = 16",
      "--gin_param=Bitransformer.decode.max_decode_length = 8",
  ], cwd=str(tmp_path))
  assert evaluate.returncode == 0, evaluate.stdout[-4000:]
  assert "local_super_glue_rte/accuracy at step %d" % STEPS in (
      evaluate.stdout)

  exported = str(tmp_path / "finetuned_hf")
  assert tool.main(["mtf-to-hf", finetuned, exported]) == 0
  assert sorted(os.listdir(exported)) == [
      "config.json", "conversion.json", "model.safetensors", "spiece.model"]
  # The fine-tuned weights, not the converted ones, were exported.
  before = mtf_checkpoint.MtfCheckpoint(converted + "/model.ckpt-0")
  after = mtf_checkpoint.MtfCheckpoint(finetuned + "/model.ckpt-%d" % STEPS)
  name = "decoder/block_000/layer_005/MoE1D/wo/kernel"
  assert (before.read(name) != after.read(name)).any()
  # ... trained from the converted weights (init_checkpoint), not from
  # scratch: a few steps at 1e-3 leave them nearly where they were.
  correlation = np.corrcoef(before.read(name).astype(np.float32).ravel(),
                            after.read(name).astype(np.float32).ravel())[0, 1]
  assert correlation > 0.99
  if importlib.util.find_spec("torch"):
    import transformers  # pylint: disable=g-import-not-at-top
    model = transformers.SwitchTransformersForConditionalGeneration \
        .from_pretrained(exported)
    assert model.config.num_experts == 2
