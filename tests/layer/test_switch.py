"""The Switch layer against the independent NumPy reference."""

import gin
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.layer import switch as layer_lib
from tests.layer import layer_harness
from tests.layer import numpy_reference

PREFIX = "encoder/layer_000/MoE1D"
B, L, M, E, H = 4, 8, 6, 4, 5


def _inputs(seed=0, padded=True):
  rng = np.random.RandomState(seed)
  x = rng.randn(B, L, M).astype(np.float32)
  sequence_id = np.ones([B, L], np.int32)
  if padded:
    sequence_id[1, 5:] = 0
    sequence_id[3, 2:] = 0
  return rng, x, sequence_id


def _reference(x, sequence_id, weights, **kwargs):
  nonpadding = (sequence_id != 0).astype(np.float64)
  # LayerStack zeroes padding positions before calling the layer.
  return numpy_reference.switch_layer(
      x * nonpadding[..., None], weights[PREFIX + "/switch_gating/kernel"],
      weights.get(PREFIX + "/wi/kernel", weights.get(PREFIX + "/wi_0/kernel")),
      weights[PREFIX + "/wo/kernel"], nonpadding=nonpadding,
      wi_gate=weights.get(PREFIX + "/wi_1/kernel"), **kwargs)


@pytest.mark.parametrize("activation", ["relu", "gelu", "geglu"])
def test_matches_numpy_reference_with_padding(activation):
  rng, x, sequence_id = _inputs()
  weights = layer_harness.switch_weights(rng, M, E, H,
                                         gated=activation == "geglu")
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8,
                               router_policy_train="argmax",
                               activation=activation),
      x, sequence_id, weights)
  ref = _reference(x, sequence_id, weights, group_size=8,
                   activation=activation)
  assert ref.num_groups == 4 and ref.capacity == 4
  np.testing.assert_allclose(result.output, ref.output, atol=1e-5)
  np.testing.assert_allclose(result.aux_loss,
                             0.01 * ref.load_balancing_loss, rtol=1e-5)
  # Padding rows and overflow rows are exact zeros (residual passthrough).
  dropped = ~ref.kept
  assert dropped.sum() > 0
  assert np.all(result.output[dropped] == 0.0)


def test_train_and_eval_capacity_differ_as_configured():
  rng, x, sequence_id = _inputs(seed=1, padded=False)
  # One group of 32 tokens; a router biased to expert 0 overflows it.
  weights = layer_harness.switch_weights(rng, M, E, H)
  weights[PREFIX + "/switch_gating/kernel"][:, 0] += 0.5
  make = lambda: layer_lib.Switch(  # pylint: disable=g-long-lambda
      num_experts=E, hidden_size=H, group_size=32, capacity_factor_train=1.0,
      capacity_factor_eval=2.0, min_expert_capacity=1,
      router_policy_train="argmax")
  dropped = {}
  for mode, capacity_factor, capacity in ((layer_harness.TRAIN, 1.0, 8),
                                          (layer_harness.EVAL, 2.0, 16)):
    result = layer_harness.run_layer(make, x, sequence_id, weights, mode=mode)
    ref = _reference(x, sequence_id, weights, group_size=32,
                     capacity_factor=capacity_factor, min_capacity=1)
    assert ref.capacity == capacity
    np.testing.assert_allclose(result.output, ref.output, atol=1e-5)
    # Dropped tokens are all-zero rows (residual passthrough); so are kept
    # tokens whose ReLU units are all off, as in the reference.
    dropped[mode] = np.all(result.output == 0.0, axis=-1)
    np.testing.assert_array_equal(dropped[mode],
                                  np.all(ref.output == 0.0, axis=-1))
  # The layer itself drops more in training than at eval capacity.
  assert dropped[layer_harness.TRAIN].sum() > dropped[
      layer_harness.EVAL].sum()


def test_fractional_capacity_is_floored_in_the_layer():
  """S * cf / E = 8 * 1.875 / 4 = 3.75 slots: the layer keeps 3, as Mesh TF.

  Fails if capacity rounds (flaxformer) or takes the ceiling (checked by
  replacing the floor in capacity.expert_capacity with round and with ceil).
  """
  rng, x, sequence_id = _inputs(seed=4, padded=False)
  weights = layer_harness.switch_weights(rng, M, E, H)
  weights[PREFIX + "/switch_gating/kernel"][:, 0] += 0.4
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8,
                               capacity_factor_train=1.875,
                               min_expert_capacity=1,
                               router_policy_train="argmax"),
      x, sequence_id, weights)
  ref = _reference(x, sequence_id, weights, group_size=8,
                   capacity_factor=1.875, min_capacity=1)
  four_slots = _reference(x, sequence_id, weights, group_size=8,
                          capacity_factor=2.0, min_capacity=1)
  assert ref.capacity == 3 and four_slots.capacity == 4
  assert ref.kept.sum() < four_slots.kept.sum()  # the fourth slot matters
  np.testing.assert_allclose(result.output, ref.output, atol=1e-5)


def test_bfloat16_activations_keep_a_float32_router():
  rng, x, sequence_id = _inputs(seed=2)
  weights = layer_harness.switch_weights(rng, M, E, H)
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8,
                               router_policy_train="argmax"),
      x, sequence_id, weights, activation_dtype=tf.bfloat16,
      extra=_router_dtypes)
  # Every router tensor (kernel read, logits, softmax, top-1) is float32.
  assert result.extra["num_router_tensors"] >= 10
  assert result.extra["num_float32_router_tensors"] == (
      result.extra["num_router_tensors"])
  # The layer sees bfloat16 inputs; routing them in float32 with float32
  # weights gives the reference's decisions, expert math is bfloat16.
  x_bf16 = x.astype(tf.bfloat16.as_numpy_dtype).astype(np.float32)
  ref = _reference(x_bf16, sequence_id, weights, group_size=8)
  assert np.all(result.output[~ref.kept] == 0.0)
  np.testing.assert_allclose(result.output, ref.output, atol=0.03, rtol=0.03)
  np.testing.assert_allclose(result.aux_loss, 0.01 * ref.load_balancing_loss,
                             rtol=1e-2)


def test_bfloat16_router_ablation_runs_the_router_in_bfloat16():
  # Paper Table 2's unstable ablation: the router in the activation dtype.
  rng, x, sequence_id = _inputs(seed=2)
  weights = layer_harness.switch_weights(rng, M, E, H)
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8,
                               router_policy_train="argmax",
                               router_dtype="bfloat16"),
      x, sequence_id, weights, activation_dtype=tf.bfloat16,
      extra=_router_dtypes)
  assert result.extra["num_router_tensors"] >= 10
  # The kernel read, logits and softmax are bfloat16 now; only the casts
  # back to float32 for the masks and losses remain float32.
  num_bf16 = (result.extra["num_router_tensors"] -
              result.extra["num_float32_router_tensors"])
  assert num_bf16 >= 3
  x_bf16 = x.astype(tf.bfloat16.as_numpy_dtype).astype(np.float32)
  ref = _reference(x_bf16, sequence_id, weights, group_size=8)
  np.testing.assert_allclose(result.aux_loss, 0.01 * ref.load_balancing_loss,
                             rtol=5e-2)


def _gates_seen_by_the_experts(router_dtype):
  """Each routed token's gate, as output / (the reference's ungated output).

  Float32 activations, so only the router's dtype rounds the gate.
  """
  rng, x, sequence_id = _inputs(seed=7, padded=False)
  weights = layer_harness.switch_weights(rng, M, E, H, scale=3.0)
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=32,
                               capacity_factor_train=4.0,
                               router_policy_train="argmax",
                               router_dtype=router_dtype),
      x, sequence_id, weights)
  ref = _reference(x, sequence_id, weights, group_size=32,
                   capacity_factor=4.0)
  live = np.abs(ref.output).max(-1) > 1e-3
  ratio = result.output[live] / ref.output[live]
  same_expert = np.ptp(ratio, axis=-1) < 1e-4 * np.abs(ratio).max(-1)
  assert same_expert.mean() > 0.8
  return (ratio[same_expert].mean(-1) * ref.gate[live][same_expert]).astype(
      np.float32)


def _is_bfloat16_value(values):
  rounded = values.astype(tf.bfloat16.as_numpy_dtype).astype(np.float32)
  return np.abs(rounded - values) <= 1e-5 * np.abs(values)


def test_bfloat16_router_rounds_the_gates_to_bfloat16():
  """The ablation's gates carry bfloat16 precision; selective ones do not.

  Fails if router_dtype is ignored (checked by building the router in
  float32 whatever the knob says).
  """
  assert _is_bfloat16_value(_gates_seen_by_the_experts("bfloat16")).all()
  assert _is_bfloat16_value(_gates_seen_by_the_experts("float32")).mean() < (
      0.2)


def test_unknown_router_dtype_is_refused():
  with pytest.raises(ValueError, match="router_dtype='float16'"):
    layer_lib.Switch(router_dtype="float16")


def _router_dtypes(graph, unused_y, unused_aux):
  """Counts the router's floating tensors, and those in float32."""
  import mesh_tensorflow as mtf  # pylint: disable=g-import-not-at-top
  router_tensors = [
      t for op in graph.operations
      if any(part in op.name for part in ("switch_gating", "softmax", "top_k"))
      for t in op.outputs if t.dtype.is_floating]
  mesh = router_tensors[0].mesh
  return {
      "num_router_tensors": mtf.constant(mesh, len(router_tensors), dtype=tf.int32),
      "num_float32_router_tensors": mtf.constant(
          mesh, sum(t.dtype == tf.float32 for t in router_tensors),
          dtype=tf.int32),
  }


def test_variables_are_named_and_shaped_like_moe1d():
  rng, x, sequence_id = _inputs()
  del rng
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8,
                               activation="geglu"), x, sequence_id)
  shapes = {k: v.shape for k, v in result.variables.items()}
  assert shapes == {
      PREFIX + "/switch_gating/kernel": (M, E),
      PREFIX + "/wi_0/kernel": (E, M, H),
      PREFIX + "/wi_1/kernel": (E, M, H),
      PREFIX + "/wo/kernel": (E, H, M),
  }


def test_paper_init_scale_knob_reaches_router_and_experts():
  # Paper §2.4: truncated normal, std sqrt(0.1 / fan_in); fan-in excludes
  # the experts dimension. Mesh TF's own gin knob sets it.
  d_model, hidden = 64, 48
  x = np.random.RandomState(6).randn(2, 4, d_model).astype(np.float32)
  gin.bind_parameter("VarianceScalingInitializer.scale", 0.1)
  try:
    result = layer_harness.run_layer(
        lambda: layer_lib.Switch(num_experts=8, hidden_size=hidden), x)
  finally:
    gin.clear_config()
  for name, fan_in in (("switch_gating", d_model), ("wi", d_model),
                       ("wo", hidden)):
    values = result.initial_variables["%s/%s/kernel" % (PREFIX, name)]
    std = np.sqrt(0.1 / fan_in)
    assert np.abs(values).max() <= 2 * std + 1e-6, name  # truncated at 2σ
    # A normal truncated at 2σ has std 0.88σ.
    np.testing.assert_allclose(values.std(), 0.88 * std, rtol=0.1,
                               err_msg=name)


@pytest.mark.parametrize("without_drops", [True, False])
def test_incremental_decoding_drops_no_token_unless_asked(without_drops):
  """One decode step of 12 sequences: a group of 12 tokens, all to expert 0.

  Under Mesh TF's rule the eval factor 2.0 gives 12 * 2 / 4 = 6 slots and
  half the tokens overflow; by default every expert has all 12 slots.
  """
  batch = 12
  rng = np.random.RandomState(3)
  x = np.abs(rng.randn(batch, 1, M)).astype(np.float32) + 0.1
  weights = layer_harness.switch_weights(rng, M, E, H)
  weights[PREFIX + "/switch_gating/kernel"][:] = 0.0
  weights[PREFIX + "/switch_gating/kernel"][:, 0] = 1.0  # all to expert 0
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H,
                               min_expert_capacity=1,
                               decode_without_drops=without_drops), x,
      weights=weights, incremental=True)
  ref = _reference(x, np.ones([batch, 1], np.int32), weights,
                   capacity_factor=float(E) if without_drops else 2.0,
                   min_capacity=1)
  assert ref.capacity == (batch if without_drops else 6)
  assert ref.kept.sum() == (batch if without_drops else 6)
  np.testing.assert_allclose(result.output, ref.output, atol=1e-5)


def test_expert_dropout_applies_in_training_only():
  rng, x, sequence_id = _inputs(seed=4)
  weights = layer_harness.switch_weights(rng, M, E, H)
  make = lambda: layer_lib.Switch(  # pylint: disable=g-long-lambda
      num_experts=E, hidden_size=H, group_size=8, router_policy_train="argmax",
      expert_dropout_rate=0.5)
  train = layer_harness.run_layer(make, x, sequence_id, weights, runs=2)
  assert not np.array_equal(*train.outputs)
  # Each routed token's output must be gate * (mask * h / keep) @ wo for some
  # 0/1 mask over the H hidden units, with about half the live units off:
  # fails if the dropout hits another tensor, misses the 1/keep scaling or
  # uses another rate (checked on mutants of experts.py).
  ref = _reference(x, sequence_id, weights, group_size=8)
  masks = np.array(np.meshgrid(*[[0, 1]] * H)).reshape(H, -1).T
  dropped = live = 0
  for out in train.outputs:
    for t in zip(*np.nonzero(ref.kept)):
      e = ref.expert_index[t]
      h = np.maximum(x[t] @ weights[PREFIX + "/wi/kernel"][e], 0.0)
      units = (h / 0.5)[:, None] * weights[PREFIX + "/wo/kernel"][e]
      candidates = ref.gate[t] * (masks @ units)
      errors = np.abs(candidates - out[t]).max(axis=-1)
      best = np.argmin(errors)
      assert errors[best] < 1e-4 * (1.0 + np.abs(out[t]).max()), t
      on = h > 1e-3
      dropped += int((masks[best] == 0)[on].sum())
      live += int(on.sum())
  assert live > 50 and 0.3 < dropped / live < 0.7, (dropped, live)
  evaluation = layer_harness.run_layer(make, x, sequence_id, weights,
                                       mode=layer_harness.EVAL)
  ref = _reference(x, sequence_id, weights, group_size=8,
                   capacity_factor=2.0)
  np.testing.assert_allclose(evaluation.output, ref.output, atol=1e-5)


def test_runs_without_a_loss_list_as_when_decoding():
  rng, x, sequence_id = _inputs(seed=5)
  weights = layer_harness.switch_weights(rng, M, E, H)
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8),
      x, sequence_id, weights, mode=tf.estimator.ModeKeys.PREDICT,
      collect_losses=False)
  ref = _reference(x, sequence_id, weights, group_size=8,
                   capacity_factor=2.0)
  np.testing.assert_allclose(result.output, ref.output, atol=1e-5)
  assert result.aux_loss == 0.0 and not result.summaries


@pytest.mark.parametrize("kwargs, message", [
    (dict(capacity_factor_train=0.0), "capacity_factor_train=0.0"),
    (dict(capacity_factor_eval=-1.0), "capacity_factor_eval=-1.0"),
    (dict(group_size=0), "group_size=0"),
    (dict(router_policy_train="noisy"), "router_policy_train='noisy'"),
    (dict(router_policy_eval="gumbel"), "router_policy_eval='gumbel'"),
    (dict(activation="swish"), "activation='swish'"),
    (dict(dispatch_mode="scatter"), "dispatch_mode='scatter'"),
    (dict(expert_dropout_rate=1.0), "expert_dropout_rate=1.0"),
])
def test_bad_hyperparameters_fail_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(")):
    layer_lib.Switch(**kwargs)


def test_experts_not_divisible_by_their_mesh_dimension_fail_clearly():
  _, x, sequence_id = _inputs()
  with pytest.raises(ValueError, match=r"num_experts=6 is not divisible by "
                     r"the 4-way mesh dimension"):
    layer_harness.run_layer(
        lambda: layer_lib.Switch(num_experts=6, hidden_size=H), x,
        sequence_id, mesh_shape="batch:4", layout="batch:batch,experts:batch")
