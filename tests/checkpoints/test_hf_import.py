"""HF folders saved by transformers convert to model dirs Mesh TF loads.

The folders are transformers' own (save_pretrained of randomised tiny
models, safetensors and pytorch_model.bin); the checkpoint written must hold
exactly the variables Mesh TF builds from the emitted model.gin, in the
asked dtype, with values that are HF's tensors in Mesh TF's layout (HF's
state dict, read with torch, is the reference; bfloat16 is torch's own
rounding). tests/checkpoints/test_parity.py runs the converted models.
"""

import json
import os

import numpy as np
import pytest

from switch_mtf.checkpoints import gin_emitter
from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import import_hf
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_model
from tests.checkpoints import hf_fixtures

torch = pytest.importorskip("torch")

CASES = {
    "switch": (hf_names.SWITCH, hf_fixtures.SWITCH_CONFIG),
    "t5_v1_0": (hf_names.T5, hf_fixtures.T5_V10_CONFIG),
    "t5_v1_1": (hf_names.T5, hf_fixtures.T5_V11_CONFIG),
}


def _convert(tmp_path, case, dtype="float32", safe_serialization=True):
  family, config = CASES[case]
  hf_dir = str(tmp_path / "hf")
  model = hf_fixtures.save_random_model(hf_dir, family, config,
                                        safe_serialization=safe_serialization)
  result = import_hf.import_hf(hf_dir, str(tmp_path / "mtf"), dtype=dtype)
  return model.state_dict(), result


@pytest.mark.parametrize("case,safe_serialization", [
    ("switch", True), ("switch", False), ("t5_v1_0", True),
    ("t5_v1_1", False)])
def test_checkpoint_holds_exactly_the_graphs_variables(tmp_path, case,
                                                       safe_serialization):
  _, result = _convert(tmp_path, case, safe_serialization=safe_serialization)
  checkpoint = mtf_checkpoint.MtfCheckpoint(result.checkpoint_prefix)
  mtf_model.parse([result.gin_file])
  built = mtf_model.variables(hf_fixtures.VOCAB_SIZE)
  stored = {name: (checkpoint.shape(name), checkpoint.dtype(name))
            for name in checkpoint.names()}
  assert stored == built
  assert checkpoint.step == 0


def test_switch_values_are_hf_tensors_in_mesh_tf_layout(tmp_path):
  state, result = _convert(tmp_path, "switch")
  checkpoint = mtf_checkpoint.MtfCheckpoint(result.checkpoint_prefix)

  def hf(name):
    return state[name].numpy()

  mtf = checkpoint.read
  np.testing.assert_array_equal(mtf("shared/embedding"), hf("shared.weight"))
  # HF block 3 is Mesh TF block 1 (two HF blocks per block), second layer.
  np.testing.assert_array_equal(
      mtf("encoder/block_001/layer_002/SelfAttention/q"),
      hf("encoder.block.3.layer.0.SelfAttention.q.weight").T)
  np.testing.assert_array_equal(
      mtf("encoder/block_000/layer_000/SelfAttention/relative_attention_bias"),
      hf("encoder.block.0.layer.0.SelfAttention.relative_attention_bias"
         ".weight").T)
  np.testing.assert_array_equal(
      mtf("decoder/block_001/layer_005/MoE1D/switch_gating/kernel"),
      hf("decoder.block.3.layer.2.mlp.router.classifier.weight").T)
  np.testing.assert_array_equal(
      mtf("decoder/block_001/layer_005/MoE1D/wo/kernel")[2],
      hf("decoder.block.3.layer.2.mlp.experts.expert_2.wo.weight").T)
  np.testing.assert_array_equal(
      mtf("decoder/block_000/layer_004/rms_norm/scale"),
      hf("decoder.block.1.layer.1.layer_norm.weight"))
  np.testing.assert_array_equal(mtf("decoder/rms_norm/scale"),
                                hf("decoder.final_layer_norm.weight"))


def test_bfloat16_is_torchs_rounding_of_the_float32_weights(tmp_path):
  state, result = _convert(tmp_path, "t5_v1_1", dtype="bfloat16")
  checkpoint = mtf_checkpoint.MtfCheckpoint(result.checkpoint_prefix)
  stored = checkpoint.read("decoder/logits/kernel")
  assert checkpoint.dtype("decoder/logits/kernel") == "bfloat16"
  rounded = state["lm_head.weight"].to(torch.bfloat16).float().numpy().T
  np.testing.assert_array_equal(stored.astype(np.float32), rounded)
  assert "master_dtype = \"bfloat16\"" in open(result.gin_file).read()


def test_model_dir_has_the_vocabulary_gin_record_and_state_file(tmp_path):
  _, result = _convert(tmp_path, "switch")
  names = sorted(os.listdir(result.model_dir))
  assert names == ["checkpoint", "conversion.json", "model.ckpt-0.data-00000-"
                   "of-00001", "model.ckpt-0.index", "model.gin",
                   "spiece.model"]
  assert mtf_checkpoint.latest(result.model_dir) == result.checkpoint_prefix
  gin_text = open(result.gin_file).read()
  assert ("switch_mtf.tasks.task_vocabulary.name = \"%s\""
          % os.path.join(result.model_dir, "spiece.model")) in gin_text
  # HF's router_jitter_noise is 0.0 here: no router noise in training.
  assert 'Switch.router_policy_train = "argmax"' in gin_text
  record = json.load(open(os.path.join(result.model_dir, "conversion.json")))
  assert record["family"] == "switch_transformers"
  assert record["architecture"]["num_experts"] == 4
  assert not [n for n in os.listdir(tmp_path) if ".partial-" in n]
  assert gin_emitter.MODEL_GIN == os.path.basename(result.gin_file)
