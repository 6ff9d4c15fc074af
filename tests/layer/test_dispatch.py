"""The two dispatch modes agree: same outputs, loss and training step."""

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.python.ops import control_flow_ops
from tensorflow.python.tpu import tpu_function
from tensorflow.python.tpu import tpu_replication

from switch_mtf.layer import dispatch
from switch_mtf.layer import switch as layer_lib
from tests.layer import layer_harness

B, L, M, E, H = 4, 8, 6, 4, 5


def _run(mode=None, activation_dtype=tf.float32, **kwargs):
  """Runs the layer; mode None leaves dispatch_mode at its default."""
  mode_arg = {} if mode is None else {"dispatch_mode": mode}
  rng = np.random.RandomState(0)
  x = rng.randn(B, L, M).astype(np.float32)
  sequence_id = np.ones([B, L], np.int32)
  sequence_id[2, 3:] = 0
  weights = layer_harness.switch_weights(rng, M, E, H)
  # Bias the router so that some tokens overflow their expert.
  weights["encoder/layer_000/MoE1D/switch_gating/kernel"][:, 1] += 0.3
  return layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=16,
                               capacity_factor_train=1.0,
                               min_expert_capacity=1,
                               router_policy_train="argmax",
                               **mode_arg),
      x, sequence_id, weights, activation_dtype=activation_dtype, **kwargs)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_gather_mode_outputs_equal_einsum_mode_exactly(dtype):
  einsum = _run("einsum", dtype)
  gather = _run("gather", dtype)
  dropped = np.abs(einsum.output).sum(-1) == 0
  assert 0 < dropped.sum() < dropped.size  # overflow and padding occur
  np.testing.assert_array_equal(gather.output, einsum.output)
  assert gather.aux_loss == einsum.aux_loss


def test_gather_mode_trains_like_einsum_mode():
  einsum = _run("einsum", sgd_learning_rate=0.1)
  gather = _run("gather", sgd_learning_rate=0.1)
  assert set(gather.variables) == set(einsum.variables)
  for name, value in einsum.variables.items():
    assert not np.allclose(value, einsum.initial_variables[name]), name
    # Gradients sum in a different order in the two modes (and multi-
    # threaded CPU reductions vary run to run), so allow float32 rounding.
    np.testing.assert_allclose(gather.variables[name], value, rtol=1e-5,
                               atol=1e-6, err_msg=name)


def _slot_tensors(graph, unused_y, unused_aux):
  import mesh_tensorflow as mtf  # pylint: disable=g-import-not-at-top
  count = sum(
      1 for op in graph.operations for t in op.outputs
      if {"group", "expert_unsplit", "expert_capacity"} <= set(
          t.shape.dimension_names))
  return {"count": mtf.constant(graph.operations[0].mesh, count,
                                dtype=tf.int32)}


def test_gather_mode_builds_no_one_hot_slot_tensor():
  assert _run("einsum", extra=_slot_tensors).extra["count"] > 0
  assert _run("gather", extra=_slot_tensors).extra["count"] == 0


def test_default_mode_on_cpu_is_gather_with_einsum_outputs():
  default = _run(extra=_slot_tensors)
  assert default.extra["count"] == 0
  np.testing.assert_array_equal(default.output, _run("einsum").output)


def test_default_mode_under_assume_tpu_builds_the_einsums():
  with dispatch.assume_tpu():
    assert _run(extra=_slot_tensors).extra["count"] > 0


def _in_tpu_replicate_context():
  with tf.Graph().as_default():
    pivot = control_flow_ops.no_op(name="pivot")
    context = tpu_replication.TPUReplicateContext(
        name="cluster", num_replicas=1, pivot=pivot)
    context.Enter()
    try:
      return dispatch.resolve_mode(dispatch.AUTO)
    finally:
      context.Exit()


def _in_tpu_shard_context():
  with tf.Graph().as_default(), tpu_function.tpu_shard_context(8):
    return dispatch.resolve_mode(dispatch.AUTO)


def test_auto_resolves_to_einsum_only_when_building_for_a_tpu():
  with tf.Graph().as_default():
    assert dispatch.resolve_mode(dispatch.AUTO) == dispatch.GATHER
  assert _in_tpu_shard_context() == dispatch.EINSUM
  assert _in_tpu_replicate_context() == dispatch.EINSUM
  with tf.Graph().as_default():  # the contexts above left nothing behind
    assert dispatch.resolve_mode(dispatch.AUTO) == dispatch.GATHER


@pytest.mark.parametrize("mode", [dispatch.EINSUM, dispatch.GATHER])
def test_explicit_modes_ignore_the_device(mode):
  with tpu_function.tpu_shard_context(8):
    assert dispatch.resolve_mode(mode) == mode
  with dispatch.assume_tpu():
    assert dispatch.resolve_mode(mode) == mode
  assert dispatch.resolve_mode(mode) == mode


def test_trash_tokens_read_zero_whatever_the_slots_hold():
  # Slot 0 holds NaN and inf (an overflowed expert output): a dropped token,
  # which reads no slot, still gets exactly 0, and its gradient goes nowhere.
  num_experts, capacity, model = 2, 2, 3
  slots_np = np.arange(num_experts * capacity * model, dtype=np.float32)
  slots_np = slots_np.reshape([1, num_experts, 1, capacity, model])
  slots_np[0, 0, 0, 0] = [np.nan, np.inf, -np.inf]
  # Tokens 0..3 take slots 3, 0, trash, 1 (slot = expert * C + position).
  slot_np = np.array([[[3, 0, num_experts * capacity, 1]]], np.int32)
  with tf.Graph().as_default():
    mesh = mtf.Mesh(mtf.Graph(), "mesh")
    outer, experts_dim, groups, cap, group, model_dim = (
        mtf.Dimension(n, s) for n, s in [
            ("outer_batch", 1), ("expert_unsplit", num_experts),
            ("batch", 1), ("expert_capacity", capacity), ("group", 4),
            ("d_model", model)])
    slots = mtf.import_fully_replicated(
        mesh, tf.constant(slots_np),
        mtf.Shape([outer, experts_dim, groups, cap, model_dim]))
    slot = mtf.import_fully_replicated(mesh, tf.constant(slot_np),
                                       mtf.Shape([outer, groups, group]))
    tokens = dispatch._from_slots(  # pylint: disable=protected-access
        slots, slot, mtf.Shape([outer, groups, group, model_dim]))
    d_slots = mtf.gradients([mtf.reduce_sum(tokens)], [slots])[0]
    mesh_impl = placement_mesh_impl.PlacementMeshImpl(
        mtf.Shape([]), mtf.LayoutRules([]), [""])
    lowering = mtf.Lowering(mesh.graph, {mesh: mesh_impl})
    fetches = [lowering.export_to_tf_tensor(t) for t in (tokens, d_slots)]
    with tf.Session() as session:
      out, grad = session.run(fetches)
  flat = slots_np.reshape([-1, model])
  np.testing.assert_array_equal(out[0, 0, 0], flat[3])
  np.testing.assert_array_equal(out[0, 0, 1], flat[0])
  np.testing.assert_array_equal(out[0, 0, 2], np.zeros(model))
  np.testing.assert_array_equal(out[0, 0, 3], flat[1])
  # Each slot read by one token gets gradient 1; slot 2 (unread) gets 0.
  np.testing.assert_array_equal(
      grad.reshape([-1, model]).sum(-1), [model, model, 0, model])
