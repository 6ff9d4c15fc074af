"""The other routers against the NumPy reference: what each one keeps.

switch_max keeps an expert's highest gates, ntlb reroutes overflow pass by
pass, expert_selection lets experts pick tokens; each against
numpy_reference.routed_layer (outputs, loss, metrics), plus the errors for
knob combinations that make no sense.
"""

import numpy as np
import pytest

from switch_mtf.layer import switch as layer_lib
from tests.layer import layer_harness
from tests.layer import numpy_reference

B, L, M, E, H = 4, 8, 6, 4, 5
PREFIX = "encoder/layer_000/MoE1D/"
TAG = "switch/encoder/layer_000/"


def _data(routing, seed=0, bias=0.6):
  """Inputs with padding and a router that favours expert 1 by `bias`."""
  rng = np.random.RandomState(seed)
  x = rng.randn(B, L, M).astype(np.float32)
  x[..., 0] = 1.0
  sequence_id = np.ones([B, L], np.int32)
  sequence_id[1, 5:] = 0
  sequence_id[3, 2:] = 0
  weights = layer_harness.switch_weights(rng, M, E, H)
  kernel = weights.pop(PREFIX + "switch_gating/kernel")
  kernel[0, 1] += bias
  weights[PREFIX + routing + "_gating/kernel"] = kernel
  return x, sequence_id, weights


def _run(routing, x, sequence_id, weights, **kwargs):
  knobs = dict(group_size=16, capacity_factor_train=1.0,
               min_expert_capacity=1, router_policy_train="argmax")
  knobs.update(kwargs)
  return layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, routing=routing,
                               **knobs), x, sequence_id, weights)


def _reference(routing, x, sequence_id, weights, **kwargs):
  """The reference on what the layer sees: LayerStack zeroes padding."""
  real = (sequence_id != 0).astype(float)
  knobs = dict(group_size=16, capacity_factor=1.0, min_capacity=1)
  knobs.update(kwargs)
  return numpy_reference.routed_layer(
      x * real[..., None], weights[PREFIX + routing + "_gating/kernel"],
      weights[PREFIX + "wi/kernel"], weights[PREFIX + "wo/kernel"], routing,
      nonpadding=real, **knobs)


def test_switch_max_keeps_the_highest_gates_not_the_first_tokens():
  x, sequence_id, weights = _data("switch_max")
  ref = _reference("switch_max", x, sequence_id, weights)
  result = _run("switch_max", x, sequence_id, weights)
  np.testing.assert_allclose(result.output, ref.output, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(result.aux_loss, 0.01 * ref.load_balancing_loss,
                             rtol=1e-5)
  # Token-order dropping (plain switch) keeps a different set of tokens.
  plain = numpy_reference.switch_layer(
      x * (sequence_id != 0)[..., None],
      weights[PREFIX + "switch_max_gating/kernel"],
      weights[PREFIX + "wi/kernel"], weights[PREFIX + "wo/kernel"],
      nonpadding=(sequence_id != 0).astype(float), group_size=16,
      capacity_factor=1.0, min_capacity=1)
  assert not np.array_equal(plain.kept, ref.experts_per_token > 0)
  real = sequence_id != 0
  np.testing.assert_allclose(
      result.summaries[TAG + "tokens_dropped_fraction"],
      1.0 - ref.experts_per_token[real].sum() / real.sum(), rtol=1e-6)


@pytest.mark.parametrize("top_k", [2, 4])
def test_ntlb_reroutes_overflow_pass_by_pass(top_k):
  x, sequence_id, weights = _data("ntlb", bias=1.5)
  ref = _reference("ntlb", x, sequence_id, weights, ntlb_top_k=top_k)
  result = _run("ntlb", x, sequence_id, weights, ntlb_top_k=top_k)
  np.testing.assert_allclose(result.output, ref.output, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(result.aux_loss, 0.01 * ref.load_balancing_loss,
                             rtol=1e-5)
  real = sequence_id != 0
  assert (ref.choice[real] == 2).sum() > 0  # some tokens were rerouted
  for number in range(1, top_k + 1):
    np.testing.assert_allclose(
        result.summaries[TAG + "ntlb_routed_fraction/pass_%d" % number],
        np.mean(ref.choice[real] == number), rtol=1e-6, err_msg=number)


def test_ntlb_with_one_pass_is_plain_switch():
  x, sequence_id, weights = _data("ntlb")
  ntlb = _run("ntlb", x, sequence_id, weights, ntlb_top_k=1)
  plain_weights = {k.replace("ntlb_gating", "switch_gating"): v
                   for k, v in weights.items()}
  plain = _run("switch", x, sequence_id, plain_weights)
  np.testing.assert_array_equal(ntlb.output, plain.output)
  assert ntlb.aux_loss == plain.aux_loss


@pytest.mark.parametrize("group_size, min_capacity", [(16, 1), (8, 16)])
def test_expert_selection_lets_experts_pick_tokens(group_size, min_capacity):
  # (8, 16): the minimum capacity exceeds the group, so every expert takes
  # the whole group (C = S) and each token averages all experts.
  x, sequence_id, weights = _data("expert_selection")
  ref = _reference("expert_selection", x, sequence_id, weights,
                   group_size=group_size, min_capacity=min_capacity)
  for mode in ("einsum", "gather"):
    result = _run("expert_selection", x, sequence_id, weights,
                  group_size=group_size, min_expert_capacity=min_capacity,
                  dispatch_mode=mode)
    np.testing.assert_allclose(result.output, ref.output, rtol=1e-5,
                               atol=1e-6, err_msg=mode)
    np.testing.assert_allclose(result.aux_loss,
                               0.01 * ref.load_balancing_loss, rtol=1e-5)
    real = sequence_id != 0
    picks = ref.experts_per_token[real]
    np.testing.assert_allclose(
        result.summaries[TAG + "experts_per_token_mean"], picks.mean(),
        rtol=1e-6)
    np.testing.assert_allclose(
        result.summaries[TAG + "tokens_dropped_fraction"],
        np.mean(picks == 0), rtol=1e-6, atol=1e-7)
  if min_capacity == 1:
    assert (picks == 0).any() and (picks > 1).any()  # none and several
  else:
    assert (picks == E).all()


@pytest.mark.parametrize("knobs, message", [
    (dict(routing="top_2"), r"routing='top_2' is not known"),
    (dict(routing="ntlb", ntlb_top_k=0), r"ntlb_top_k=0 must be an integer "
     r"from 1 to num_experts=4"),
    (dict(routing="ntlb", ntlb_top_k=5), r"ntlb_top_k=5"),
    (dict(ntlb_top_k=2), r"ntlb_top_k=2 has no effect with "
     r"Switch.routing='switch'"),
    (dict(router_policy_train="sample", router_temperature=0.0),
     r"router_temperature=0.0 must be > 0"),
    (dict(router_policy_eval="sample", router_temperature=-1.0),
     r"router_temperature=-1.0 must be > 0"),
    (dict(router_temperature=0.5), r"router_temperature=0.5 has no effect"),
    (dict(routing="ntlb", router_policy_train="input_dropout"),
     r"router_policy_train='input_dropout' does not apply to "
     r"Switch.routing='ntlb'"),
    (dict(routing="ntlb", router_policy_eval="sample"),
     r"router_policy_eval='sample' does not apply"),
    (dict(routing="expert_selection", router_policy_train="sample"),
     r"'sample' does not apply to Switch.routing='expert_selection'"),
])
def test_knob_combinations_that_make_no_sense_are_refused(knobs, message):
  with pytest.raises(ValueError, match=message):
    layer_lib.Switch(num_experts=E, hidden_size=H, **knobs)


@pytest.mark.parametrize("routing", ["switch_max", "ntlb",
                                     "expert_selection"])
def test_incremental_decoding_routes_like_a_full_pass(routing):
  # One decoding step of a 4-sequence batch is one group of 4 tokens;
  # decode_without_drops gives every expert the whole group, which a
  # full-length pass with capacity factor E also does.
  rng = np.random.RandomState(4)
  x = rng.randn(B, 1, M).astype(np.float32)
  _, _, weights = _data(routing, seed=4)
  step = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H,
                               routing=routing), x, weights=weights,
      incremental=True, collect_losses=False)
  full = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, routing=routing,
                               capacity_factor_eval=float(E)), x,
      weights=weights, mode=layer_harness.EVAL)
  assert np.abs(full.output).sum(-1).min() > 0  # every token processed
  np.testing.assert_array_equal(step.output, full.output)
