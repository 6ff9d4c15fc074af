"""expert_matmul computes mtf.einsum's expert products, as tf.matmul.

Forward and both gradients against NumPy and against Mesh TF's own einsum,
on one device and with the contracted dimension split over two devices
(the allreduce); and the lowered Switch step multiplies its experts with
BatchMatMul, not Einsum, and differentiates the expert relu with one
ReluGrad (the CPU speed fixes of docs/results.md).
"""

import collections

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.bench.speed import layer_graph
from switch_mtf.layer import expert_matmul

tf.disable_v2_behavior()

E, G, C, K, N = 4, 2, 3, 6, 10


def _products(mesh_shape="", layout="", devices=("",), use_einsum=False):
  """y = x @ w per expert, loss = sum(y * t); returns y, dx, dw (NumPy)."""
  rng = np.random.RandomState(0)
  x_np = rng.randn(E, G, C, K).astype(np.float32)
  w_np = rng.randn(E, K, N).astype(np.float32)
  t_np = rng.randn(E, G, C, N).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    mtf_graph = mtf.Graph()
    mesh = mtf.Mesh(mtf_graph, "mesh")
    e, g, c, k, n = (mtf.Dimension(name, size) for name, size in
                     [("experts", E), ("g", G), ("c", C), ("k", K), ("n", N)])
    x = mtf.import_fully_replicated(mesh, tf.constant(x_np),
                                    mtf.Shape([e, g, c, k]))
    w = mtf.import_fully_replicated(mesh, tf.constant(w_np),
                                    mtf.Shape([e, k, n]))
    t = mtf.import_fully_replicated(mesh, tf.constant(t_np),
                                    mtf.Shape([e, g, c, n]))
    out_shape = mtf.Shape([e, g, c, n])
    y = (mtf.einsum([x, w], out_shape) if use_einsum
         else expert_matmul.expert_matmul(x, w, out_shape))
    loss = mtf.reduce_sum(y * t)
    dx, dw = mtf.gradients([loss], [x, w])
    mesh_impl = placement_mesh_impl.PlacementMeshImpl(
        mtf.convert_to_shape(mesh_shape), mtf.convert_to_layout_rules(layout),
        list(devices))
    lowering = mtf.Lowering(mtf_graph, {mesh: mesh_impl})
    fetches = [lowering.export_to_tf_tensor(v) for v in (y, dx, dw)]
    config = tf.ConfigProto(device_count={"CPU": len(devices)})
    with tf.Session(config=config) as session:
      result = session.run(fetches)
  expected = (np.einsum("egck,ekn->egcn", x_np, w_np),
              np.einsum("egcn,ekn->egck", t_np, w_np),
              np.einsum("egck,egcn->ekn", x_np, t_np))
  return result, expected


def test_forward_and_gradients_match_numpy():
  (y, dx, dw), (y_ref, dx_ref, dw_ref) = _products()
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, dw_ref, rtol=1e-5, atol=1e-5)


def test_matches_mesh_tf_einsum():
  ours, _ = _products()
  theirs, _ = _products(use_einsum=True)
  for a, b in zip(ours, theirs):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["k:model", "n:model", "experts:model"])
def test_split_dimensions_match_one_device(layout):
  # k:model splits the forward's contracted dim (an allreduce), n:model that
  # of dx, experts:model the batch of matrices; g and c (dw's contracted
  # dims) stay whole as in the layer.
  (y, dx, dw), (y_ref, dx_ref, dw_ref) = _products(
      "model:2", layout, devices=("/cpu:0", "/cpu:1"))
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, dw_ref, rtol=1e-5, atol=1e-5)


def test_mismatched_shapes_are_refused():
  mesh = mtf.Mesh(mtf.Graph(), "mesh")
  e, k, n = (mtf.Dimension(a, s) for a, s in [("experts", 2), ("k", 3),
                                              ("n", 4)])
  x = mtf.zeros(mesh, mtf.Shape([e, n]))
  w = mtf.zeros(mesh, mtf.Shape([e, k, n]))
  with pytest.raises(ValueError, match="contracted dims must match"):
    expert_matmul.expert_matmul(x, w, mtf.Shape([e, n]))


@pytest.mark.parametrize("kind", [layer_graph.SWITCH_GATHER,
                                  layer_graph.SWITCH_EINSUM])
def test_switch_step_multiplies_experts_without_einsum(kind):
  built = layer_graph.BuiltLayer(layer_graph.LayerSpec(
      kind=kind, batch=2, length=8, d_model=4, hidden=8, num_experts=2,
      group_size=8))
  expert_ops = [op for op in built.graph.get_operations()
                if "/wi/" in op.name or "/wo/" in op.name]
  types = {op.type for op in expert_ops}
  # Forward, input gradient and weight gradient of each of wi and wo.
  assert sum(op.type == "BatchMatMulV2" for op in expert_ops) == 6
  assert "Einsum" not in types
  built.step()
  built.close()


@pytest.mark.parametrize("kind", [layer_graph.SWITCH_GATHER,
                                  layer_graph.SWITCH_EINSUM])
def test_expert_relu_is_differentiated_by_fused_relu_grad(kind):
  # Mesh TF's relu gradient, dy * cast(x > 0), makes three passes over the
  # expert activation; the values are those of one ReluGrad (the layer's
  # training step equals MoE1D's in test_switch_vs_moe1d).
  built = layer_graph.BuiltLayer(layer_graph.LayerSpec(
      kind=kind, batch=2, length=8, d_model=4, hidden=8, num_experts=2,
      group_size=8))
  types = collections.Counter(op.type for op in built.graph.get_operations()
                              if "/MoE1D/" in op.name)
  assert types["ReluGrad"] == 1
  assert types["Greater"] == 0
  built.close()
