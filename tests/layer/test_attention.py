"""SwitchSelfAttention: Switch experts compute q and k = v (paper App. A).

Checked against a NumPy reference of experts-in-attention, for attention
across positions (which Mesh TF 0.1.21's own ExpertsSelfAttention lacks),
in both dispatch modes and through a training step.
"""

from mesh_tensorflow.transformer import transformer_layers
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.layer import attention
from switch_mtf.layer import switch as layer_lib
from tests.cli import cli_runs
from tests.layer import layer_harness
from tests.layer import numpy_reference

B, L, M, E, H, HEADS, D_KV = 2, 6, 8, 4, 8, 2, 4
PREFIX = "encoder/layer_000/SwitchSelfAttention/"


def _make(mode="gather", **kwargs):
  experts = dict(num_experts=E, hidden_size=H, group_size=B * L,
                 capacity_factor_train=1.0, capacity_factor_eval=1.0,
                 min_expert_capacity=1, router_policy_train="argmax",
                 dispatch_mode=mode)
  experts.update(kwargs)
  return lambda: attention.SwitchSelfAttention(  # pylint: disable=g-long-lambda
      experts=layer_lib.Switch(**experts), num_heads=HEADS,
      key_value_size=D_KV)


def _weights(rng):
  flat = HEADS * D_KV
  router = rng.randn(M, E).astype(np.float32)
  router[0, 2] += 2.0  # with x[..., 0] = 1: expert 2 overflows
  return {
      PREFIX + "switch_gating/kernel": router,
      PREFIX + "wi/kernel": rng.randn(E, M, H).astype(np.float32) / np.sqrt(M),
      PREFIX + "q_wo/kernel":
          rng.randn(E, H, flat).astype(np.float32) / np.sqrt(H),
      PREFIX + "k_wo/kernel":
          rng.randn(E, H, flat).astype(np.float32) / np.sqrt(H),
      PREFIX + "o": rng.randn(flat, M).astype(np.float32) / np.sqrt(flat),
  }


def _inputs(rng):
  x = rng.randn(B, L, M).astype(np.float32)
  x[..., 0] = 1.0
  return x


def test_matches_the_numpy_reference_and_attends_across_positions():
  rng = np.random.RandomState(0)
  x, weights = _inputs(rng), _weights(rng)
  capacity = B * L // E  # cf 1.0, one group
  expected = numpy_reference.experts_self_attention(
      x, *(weights[PREFIX + n] for n in ("switch_gating/kernel", "wi/kernel",
                                          "q_wo/kernel", "k_wo/kernel", "o")),
      num_heads=HEADS, capacity=capacity)
  for mode in ("einsum", "gather"):
    result = layer_harness.run_layer(_make(mode), x, weights=weights,
                                     mode=layer_harness.EVAL)
    np.testing.assert_allclose(result.output, expected, rtol=1e-5, atol=1e-6,
                               err_msg=mode)
  # Some tokens overflowed (their q and kv are zero) and the layer mixes
  # positions: changing token 3 changes token 0's output.
  probs = x.reshape(-1, M) @ weights[PREFIX + "switch_gating/kernel"]
  assert np.bincount(probs.argmax(-1), minlength=E).max() > capacity
  moved = x.copy()
  moved[:, 3, 1:] += 1.0
  other = layer_harness.run_layer(_make(), moved, weights=weights,
                                  mode=layer_harness.EVAL)
  assert not np.allclose(other.output[:, 0], result.output[:, 0])


def test_mesh_tf_experts_self_attention_attends_each_token_to_itself():
  """Why SwitchSelfAttention exists: Mesh TF 0.1.21's layer ignores context.

  Its keys keep the queries' length dimension, so a token's output depends
  on that token alone (with sequence ids, as models always have them:
  without, the attention softmax does not even build).
  """
  rng = np.random.RandomState(1)
  x = _inputs(rng)
  sequence_id = np.ones([B, L], np.int32)
  make = lambda: transformer_layers.ExpertsSelfAttention(  # pylint: disable=g-long-lambda
      num_heads=HEADS, key_value_size=D_KV, shared_kv=True, num_experts=E,
      hidden_size=H, switch_policy_train="argmax",
      switch_policy_eval="argmax", min_expert_capacity=B * L)
  before = layer_harness.run_layer(make, x, sequence_id,
                                   mode=layer_harness.EVAL)
  moved = x.copy()
  moved[:, 3] += 1.0
  after = layer_harness.run_layer(make, moved, sequence_id,
                                  mode=layer_harness.EVAL)
  assert not np.allclose(after.output[:, 3], before.output[:, 3])
  np.testing.assert_array_equal(np.delete(after.output, 3, axis=1),
                                np.delete(before.output, 3, axis=1))


def test_a_training_step_reaches_every_weight_alike_in_both_modes():
  rng = np.random.RandomState(2)
  x, weights = _inputs(rng), _weights(rng)
  einsum = layer_harness.run_layer(_make("einsum"), x, weights=weights,
                                   sgd_learning_rate=0.1)
  gather = layer_harness.run_layer(_make("gather"), x, weights=weights,
                                   sgd_learning_rate=0.1)
  assert set(einsum.variables) == set(weights)
  for name, value in einsum.variables.items():
    assert not np.allclose(value, einsum.initial_variables[name]), name
    np.testing.assert_allclose(gather.variables[name], value, rtol=1e-5,
                               atol=1e-6, err_msg=name)
  # The router's aux loss and metrics are the attention layer's own.
  assert einsum.aux_loss > 0
  assert "switch/encoder/layer_000/load_balancing_loss" in einsum.summaries


@pytest.mark.parametrize("kwargs, message", [
    (dict(), r"experts=None must be a Switch layer"),
    (dict(experts="switch"), r"experts='switch' must be a Switch layer"),
    (dict(shared_kv=False), r"shared_kv must be True"),
    (dict(num_memory_heads=1), r"num_memory_heads=1 is not supported"),
])
def test_bad_knobs_are_refused(kwargs, message):
  if "shared_kv" in kwargs or "num_memory_heads" in kwargs:
    kwargs["experts"] = layer_lib.Switch(num_experts=E, hidden_size=H)
  with pytest.raises(ValueError, match=message):
    attention.SwitchSelfAttention(**kwargs)


# CLI runs (a minute or more each): the slow suite.
@pytest.mark.parametrize("activation_dtype", [
    pytest.param("float32", marks=pytest.mark.slow),
    pytest.param("bfloat16", marks=pytest.mark.slow)])
def test_tiny_model_with_attention_experts_trains_through_the_cli(
    tmp_path, activation_dtype):
  """models/switch_tiny_attention.gin builds and trains two steps."""
  model_dir = str(tmp_path / "model")
  flags = [f.replace("switch_tiny.gin", "switch_tiny_attention.gin")
           for f in cli_runs.TINY_TRAIN_FLAGS] + [
               "--gin_param=utils.run.train_steps = 2",
               "--gin_param=utils.run.save_checkpoints_steps = 2",
               "--gin_param=utils.run.iterations_per_loop = 2",
               "--gin_param=utils.get_variable_dtype.activation_dtype = '%s'"
               % activation_dtype]
  proc = cli_runs.run_cli(model_dir, flags, cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert cli_runs.checkpoint_steps(model_dir)[-1] == 2
  reader = tf.train.load_checkpoint(model_dir)
  names = set(reader.get_variable_to_shape_map())
  for layer in ("encoder/block_000/layer_002", "decoder/block_000/layer_003"):
    for kernel in ("switch_gating/kernel", "wi/kernel", "q_wo/kernel",
                   "k_wo/kernel", "o"):
      assert "%s/SwitchSelfAttention/%s" % (layer, kernel) in names
    assert reader.get_variable_to_shape_map()[
        layer + "/SwitchSelfAttention/q_wo/kernel"] == [8, 512, 128]
