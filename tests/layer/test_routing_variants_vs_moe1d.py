"""Parity with Mesh TF's MoE1D for the paper's other routers and policies.

Mesh TF's moe_gating "ntlb", "switch_max" and "expert_selection" and its
switch_policy_* against Switch.routing / router_policy_* on the same
weights and inputs, in both dispatch modes: outputs, aux loss and the
weights after a training step. Every (routing, policy) pair that both
layers apply is checked (MESH_TF_POLICIES); "switch" with "argmax" is
test_switch_vs_moe1d.py's. The random policies (input_jitter and
input_dropout noise the router input, sample draws Gumbel noise) draw a
uniform tensor of the same shape on both sides; the draw is made
deterministic (a fixed op seed under the harness's graph seed), so both
layers see the same numbers.
"""

from mesh_tensorflow import placement_mesh_impl
from mesh_tensorflow.transformer import moe
import numpy as np
import pytest
from scipy import stats

from switch_mtf.layer import router
from switch_mtf.layer import switch as layer_lib
from tests.layer import layer_harness

B, L, M, E, H = 4, 8, 6, 4, 5
PREFIX = "encoder/layer_000/MoE1D/"
MODES = ("einsum", "gather")

# The policies each of Mesh TF's gatings applies (moe.py: _switch_gating and
# _switch_max_gating all four; _ntlb_gating only input_jitter's noise;
# _expert_selection_gating input_jitter's and input_dropout's). It runs the
# others as argmax without a word; our layer refuses them
# (test_routing_variants.py), so these pairs are all both layers have.
MESH_TF_POLICIES = {
    "switch": ("input_jitter", "input_dropout", "argmax", "sample"),
    "switch_max": ("input_jitter", "input_dropout", "argmax", "sample"),
    "ntlb": ("input_jitter", "argmax"),
    "expert_selection": ("input_jitter", "input_dropout", "argmax"),
}
RANDOM_POLICY_PAIRS = [(gating, policy)
                       for gating, policies in MESH_TF_POLICIES.items()
                       for policy in policies if policy != "argmax"]
# Each random policy's strength: (Mesh TF's knob, ours, value), strong
# enough to change the routing of these small inputs.
POLICY_KNOBS = {
    "sample": ("switch_temperature", "router_temperature", 0.7),
    "input_jitter": ("switch_jitter", "jitter_eps", 0.3),
    "input_dropout": ("switch_dropout", "router_dropout_rate", 0.3),
}
GATING_KNOBS = {"ntlb": {"ntlb_top_k": 2}}


def _moe1d(gating, policy="argmax", eval_policy="argmax", **kwargs):
  return lambda: moe.MoE1D(  # pylint: disable=g-long-lambda
      moe_gating=gating, num_experts=E, hidden_size=H,
      switch_policy_train=policy, switch_policy_eval=eval_policy, **kwargs)


def _switch(routing, mode, policy="argmax", eval_policy="argmax", **kwargs):
  return lambda: layer_lib.Switch(  # pylint: disable=g-long-lambda
      num_experts=E, hidden_size=H, routing=routing, dispatch_mode=mode,
      router_policy_train=policy, router_policy_eval=eval_policy, **kwargs)


def _policy_knobs(policy):
  """(Mesh TF's kwargs, ours) setting the random policy's strength."""
  theirs, ours, value = POLICY_KNOBS[policy]
  return {theirs: value}, {ours: value}


def _data(gating, seed=0):
  """Inputs with padding; a router biased towards expert 0 (overflow)."""
  rng = np.random.RandomState(seed)
  x = rng.randn(B, L, M).astype(np.float32)
  sequence_id = np.ones([B, L], np.int32)
  sequence_id[0, 6:] = 0
  sequence_id[2, 1:] = 0
  weights = layer_harness.switch_weights(rng, M, E, H)
  kernel = weights.pop(PREFIX + "switch_gating/kernel")
  kernel[:, 0] += 0.4
  weights[PREFIX + gating + "_gating/kernel"] = kernel
  return x, sequence_id, weights


def _dropped_real_tokens(output, sequence_id):
  return int(((np.abs(output).sum(-1) == 0) & (sequence_id != 0)).sum())


# Group 16 gives capacity 4 (Mesh TF's iterative top-k), group 32 gives 8
# (its TopK op); EVAL uses capacity_factor_eval.
@pytest.mark.parametrize("gating, extra, mode, microbatches, group_size", [
    ("ntlb", {"ntlb_top_k": 2}, layer_harness.TRAIN, 1, 16),
    ("ntlb", {"ntlb_top_k": 3}, layer_harness.EVAL, 2, 32),
    ("switch_max", {}, layer_harness.TRAIN, 2, 16),
    ("switch_max", {}, layer_harness.EVAL, 1, 32),
    ("expert_selection", {}, layer_harness.TRAIN, 1, 16),
    ("expert_selection", {}, layer_harness.EVAL, 2, 32),
])
def test_same_outputs_and_loss_as_moe1d(gating, extra, mode, microbatches,
                                        group_size):
  x, sequence_id, weights = _data(gating)
  common = dict(group_size=group_size, capacity_factor_train=1.0,
                capacity_factor_eval=1.0, min_expert_capacity=1, **extra)
  theirs = layer_harness.run_layer(_moe1d(gating, **common), x, sequence_id,
                                   weights, mode=mode,
                                   num_microbatches=microbatches)
  plain_weights = {k.replace(gating + "_gating", "switch_gating"): v
                   for k, v in weights.items()}
  plain = layer_harness.run_layer(
      _moe1d("switch", group_size=group_size, capacity_factor_train=1.0,
             capacity_factor_eval=1.0, min_expert_capacity=1), x,
      sequence_id, plain_weights, mode=mode, num_microbatches=microbatches)
  # The variant routes differently from plain Switch on these inputs.
  assert not np.allclose(theirs.output, plain.output)
  assert _dropped_real_tokens(plain.output, sequence_id) > 0
  for dispatch_mode in MODES:
    ours = layer_harness.run_layer(
        _switch(gating, dispatch_mode, **common), x, sequence_id, weights,
        mode=mode, num_microbatches=microbatches)
    np.testing.assert_allclose(ours.output, theirs.output, rtol=1e-6,
                               atol=1e-7, err_msg=dispatch_mode)
    np.testing.assert_allclose(ours.aux_loss, theirs.aux_loss, rtol=1e-6,
                               err_msg=dispatch_mode)


@pytest.mark.parametrize("gating, extra", [
    ("ntlb", {"ntlb_top_k": 2}), ("switch_max", {}),
    ("expert_selection", {})])
def test_one_training_step_matches_moe1d(gating, extra):
  x, sequence_id, weights = _data(gating, seed=1)
  common = dict(group_size=16, capacity_factor_train=1.0,
                min_expert_capacity=1, **extra)
  theirs = layer_harness.run_layer(_moe1d(gating, **common), x, sequence_id,
                                   weights, sgd_learning_rate=0.1)
  for dispatch_mode in MODES:
    ours = layer_harness.run_layer(_switch(gating, dispatch_mode, **common),
                                   x, sequence_id, weights,
                                   sgd_learning_rate=0.1)
    assert set(ours.variables) == set(theirs.variables)
    for name, value in ours.variables.items():
      # The router learns through the gates and the aux loss.
      assert not np.allclose(value, ours.initial_variables[name]), name
      np.testing.assert_allclose(value, theirs.variables[name], rtol=1e-5,
                                 atol=1e-6, err_msg=name + dispatch_mode)


_OP_SEED = 1234


def _fixed_seed_random(self, shape, tf_fn, kwargs):
  """PlacementMeshImpl.random with a fixed op seed instead of a fresh one."""
  slice_shape = self.slice_shape(shape)
  return self.slicewise(lambda _: tf_fn(slice_shape, seed=_OP_SEED, **kwargs),
                        self.laid_out_pnum())


@pytest.fixture(name="same_draws")
def _same_draws(monkeypatch):
  monkeypatch.setattr(placement_mesh_impl.PlacementMeshImpl, "random",
                      _fixed_seed_random)


def test_the_pairs_checked_are_every_pair_our_layer_accepts():
  assert {g: set(p) for g, p in MESH_TF_POLICIES.items()} == {
      g: set(p) for g, p in router.ROUTING_POLICIES.items()}


@pytest.mark.parametrize("gating, policy", RANDOM_POLICY_PAIRS)
def test_random_policies_match_moe1d_on_the_same_draws(same_draws, gating,
                                                       policy):
  del same_draws  # fixture
  x, sequence_id, weights = _data(gating, seed=2)
  common = dict(group_size=16, capacity_factor_train=1.0,
                min_expert_capacity=1, **GATING_KNOBS.get(gating, {}))
  their_knobs, our_knobs = _policy_knobs(policy)
  theirs = layer_harness.run_layer(
      _moe1d(gating, policy, **their_knobs, **common), x, sequence_id,
      weights, sgd_learning_rate=0.1)
  argmax = layer_harness.run_layer(_moe1d(gating, **common), x, sequence_id,
                                   weights)
  assert not np.allclose(theirs.output, argmax.output)  # it drew noise
  for dispatch_mode in MODES:
    ours = layer_harness.run_layer(
        _switch(gating, dispatch_mode, policy, **our_knobs, **common), x,
        sequence_id, weights, sgd_learning_rate=0.1)
    np.testing.assert_allclose(ours.output, theirs.output, rtol=1e-6,
                               atol=1e-7, err_msg=dispatch_mode)
    np.testing.assert_allclose(ours.aux_loss, theirs.aux_loss, rtol=1e-6,
                               err_msg=dispatch_mode)
    assert set(ours.variables) == set(theirs.variables)
    for name, value in ours.variables.items():
      np.testing.assert_allclose(value, theirs.variables[name], rtol=1e-5,
                                 atol=1e-6, err_msg=name + dispatch_mode)


@pytest.mark.slow  # the training-policy test runs the same pairs in make test
@pytest.mark.parametrize("gating, policy", RANDOM_POLICY_PAIRS)
def test_random_policies_as_eval_policy_match_moe1d(same_draws, gating,
                                                    policy):
  """At eval, sample still samples; the input noise is training-only."""
  del same_draws  # fixture
  x, sequence_id, weights = _data(gating, seed=5)
  common = dict(group_size=16, capacity_factor_eval=1.0,
                min_expert_capacity=1, **GATING_KNOBS.get(gating, {}))
  their_knobs, our_knobs = _policy_knobs(policy)
  eval_mode = layer_harness.EVAL
  theirs = layer_harness.run_layer(
      _moe1d(gating, eval_policy=policy, **their_knobs, **common), x,
      sequence_id, weights, mode=eval_mode)
  argmax = layer_harness.run_layer(_moe1d(gating, **common), x, sequence_id,
                                   weights, mode=eval_mode)
  assert np.allclose(theirs.output, argmax.output) == (policy != "sample")
  for dispatch_mode in MODES:
    ours = layer_harness.run_layer(
        _switch(gating, dispatch_mode, eval_policy=policy, **our_knobs,
                **common), x, sequence_id, weights, mode=eval_mode)
    np.testing.assert_allclose(ours.output, theirs.output, rtol=1e-6,
                               atol=1e-7, err_msg=dispatch_mode)
    np.testing.assert_allclose(ours.aux_loss, theirs.aux_loss, rtol=1e-6,
                               err_msg=dispatch_mode)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_sampled_experts_follow_softmax_of_logits_over_temperature(
    same_draws, temperature):
  """Every token has the same logits; expert counts fit softmax(l / T)."""
  del same_draws  # fixture
  batch, length = 32, 64
  logits = np.array([2.0, 0.0, -1.0, 1.0], np.float32)
  x = np.zeros([batch, length, M], np.float32)
  x[..., 0] = 1.0
  weights = layer_harness.switch_weights(np.random.RandomState(3), M, E, H)
  kernel = np.zeros([M, E], np.float32)
  kernel[0] = logits
  weights[PREFIX + "switch_gating/kernel"] = kernel
  result = layer_harness.run_layer(
      _switch("switch", "gather", "sample", router_temperature=temperature),
      x, weights=weights)
  fractions = np.array([
      result.summaries["switch/encoder/layer_000/expert_fraction/expert_%03d"
                       % e] for e in range(E)])
  counts = np.round(fractions * batch * length)
  assert counts.sum() == batch * length

  def p_value(t):
    scaled = np.exp(logits.astype(np.float64) / t)
    expected = scaled / scaled.sum()
    return stats.chisquare(counts, expected * batch * length).pvalue

  assert p_value(temperature) > 1e-3
  assert p_value(1.0) < 1e-12  # the temperature is applied
