"""A converted model computes what transformers' PyTorch model computes.

Independent implementations on the same weights: a tiny random HF model
(every parameter randomised, layer norms and relative bias included), saved
with save_pretrained, converted, and run through Mesh TF on CPU
(mtf_forward.py) must give the same float32 logits to 1e-4 and, for Switch,
send every token of every sparse layer to the same expert. Sequences are
long enough for the logarithmic position buckets (beyond 8 / 16 positions)
and for the clipped ones (beyond 128). Capacities drop no token on either
side: HF's expert_capacity exceeds the sequence length, Mesh TF's eval
capacity factor equals the expert count (capacity = the whole group), as
parity needs (HF outputs the input x prob for a dropped token, Mesh TF 0).
HF's router jitter is off: transformers 4.31 applies it at inference too.
"""

import numpy as np
import pytest

from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import import_hf
from tests.checkpoints import hf_fixtures
from tests.checkpoints import mtf_forward

torch = pytest.importorskip("torch")

BATCH, INPUT_LENGTH, TARGET_LENGTH = 2, 150, 40
TOLERANCE = 1e-4


def _tokens(seed):
  rng = np.random.RandomState(seed)
  # Id 0 is padding for Mesh TF: real tokens only.
  inputs = rng.randint(2, hf_fixtures.VOCAB_SIZE, (BATCH, INPUT_LENGTH))
  targets = rng.randint(2, hf_fixtures.VOCAB_SIZE, (BATCH, TARGET_LENGTH))
  return inputs, targets


def _hf_forward(model, inputs, targets):
  """HF logits and, per router module, (chosen expert, kept) per token."""
  routes = {}

  def record(name):
    def hook(unused_module, unused_inputs, outputs):
      mask = outputs[0].reshape(-1, outputs[0].shape[-1])
      routes[name] = (mask.argmax(-1).numpy(), mask.sum(-1).numpy())
    return hook

  for name, module in model.named_modules():
    if name.endswith("mlp.router"):
      module.register_forward_hook(record(name))
  # Mesh TF's decoder input: targets shifted right, starting with id 0.
  decoder_inputs = np.concatenate(
      [np.zeros((BATCH, 1), np.int64), targets[:, :-1]], axis=1)
  with torch.no_grad():
    logits = model(input_ids=torch.tensor(inputs),
                   decoder_input_ids=torch.tensor(decoder_inputs)).logits
  return logits.numpy(), routes


def _convert_and_run(tmp_path, family, config, gin_params=()):
  hf_dir = str(tmp_path / "hf")
  model = hf_fixtures.save_random_model(hf_dir, family, config)
  result = import_hf.import_hf(hf_dir, str(tmp_path / "mtf"), dtype="float32")
  inputs, targets = _tokens(1)
  mtf = mtf_forward.run(result.checkpoint_prefix, [result.gin_file], inputs,
                        targets, gin_params)
  hf_logits, routes = _hf_forward(model, inputs, targets)
  return mtf, hf_logits, routes


def test_switch_logits_and_every_expert_choice_agree(tmp_path):
  config = hf_fixtures.SWITCH_CONFIG
  assert config["expert_capacity"] > INPUT_LENGTH
  mtf, hf_logits, routes = _convert_and_run(
      tmp_path, hf_names.SWITCH, config,
      ["Switch.capacity_factor_eval = %.1f" % config["num_experts"]])
  np.testing.assert_allclose(mtf.logits, hf_logits, atol=TOLERANCE, rtol=0)
  # HF block 2k+1 is the sparse layer of Mesh TF block k.
  pairs = {
      "encoder.block.1.layer.1.mlp.router":
          "encoder/block_000/layer_003/MoE1D/switch_gating/kernel",
      "encoder.block.3.layer.1.mlp.router":
          "encoder/block_001/layer_003/MoE1D/switch_gating/kernel",
      "decoder.block.1.layer.2.mlp.router":
          "decoder/block_000/layer_005/MoE1D/switch_gating/kernel",
      "decoder.block.3.layer.2.mlp.router":
          "decoder/block_001/layer_005/MoE1D/switch_gating/kernel",
  }
  assert sorted(routes) == sorted(pairs)
  assert sorted(mtf.router_logits) == sorted(pairs.values())
  for hf_name, mtf_name in pairs.items():
    hf_choice, hf_kept = routes[hf_name]
    assert (hf_kept == 1).all(), hf_name  # HF dropped no token
    mtf_choice = mtf.router_logits[mtf_name].argmax(-1)
    assert len(mtf_choice) == len(hf_choice)
    np.testing.assert_array_equal(mtf_choice, hf_choice, err_msg=hf_name)
    # Not a degenerate router: the tokens spread over several experts.
    assert len(set(hf_choice)) >= 2


@pytest.mark.parametrize("config", [hf_fixtures.T5_V10_CONFIG,
                                    hf_fixtures.T5_V11_CONFIG],
                         ids=["v1_0_relu_tied", "v1_1_geglu_untied"])
def test_dense_t5_logits_agree(tmp_path, config):
  mtf, hf_logits, _ = _convert_and_run(tmp_path, hf_names.T5, config)
  np.testing.assert_allclose(mtf.logits, hf_logits, atol=TOLERANCE, rtol=0)
  assert np.abs(hf_logits).max() > 100 * TOLERANCE  # not trivially small
