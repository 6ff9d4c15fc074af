"""Every speed contender builds and trains a step, configured alike.

`make bench` builds these exact graphs; a contender that cannot be built
(e.g. the dense FFN when the stand-in model's ensemble dims were a tuple)
must fail here, in the fast suite, not hours into a benchmark.
"""

import math

import numpy as np

import pytest

from switch_mtf.bench.speed import flops
from switch_mtf.bench.speed import layer_graph

TINY = dict(batch=2, length=16, d_model=8, hidden=16, num_experts=4,
            group_size=16)


@pytest.mark.parametrize("kind", layer_graph.KINDS)
def test_contender_builds_and_steps(kind):
  spec = layer_graph.LayerSpec(kind=kind, **TINY)
  built = layer_graph.BuiltLayer(spec, threads=1)
  try:
    losses = [built.step(), built.step(), built.forward()]
  finally:
    built.close()
  assert all(math.isfinite(loss) for loss in losses)
  d, h, e = TINY["d_model"], TINY["hidden"], TINY["num_experts"]
  # Dense: wi and wo. Every MoE: the same per expert, plus a d x E router.
  expected = 2 * d * h if kind == layer_graph.DENSE else e * 2 * d * h + d * e
  assert built.params == expected
  # The roofline's byte model counts the weights the graph really has.
  assert flops.params(spec) == built.params


def test_layer_spec_capacity_follows_mesh_tf():
  spec = layer_graph.LayerSpec(kind="switch_gather", num_experts=8,
                               capacity_factor=1.25, group_size=1024)
  assert spec.groups_and_capacity() == {"num_groups": 4, "group_size": 1024,
                                        "capacity": 160}
  with pytest.raises(ValueError, match="unknown layer kind"):
    layer_graph.LayerSpec(kind="top3")


def test_sgd_step_subtracts_learning_rate_times_gradient():
  # Dense, loss = sum(y * T) / N: wo's gradient h^T T / N needs only the
  # forward's h = relu(x wi), whose read of wi precedes wi's own update.
  spec = layer_graph.LayerSpec(kind=layer_graph.DENSE, **TINY)
  built = layer_graph.BuiltLayer(spec, threads=1, learning_rate=0.5)
  try:
    variables = {v.op.name.split("/")[-2]: v
                 for v in built.graph.get_collection("variables")
                 if v.op.name.endswith("kernel")}
    wi, wo = built.session.run([variables["wi"], variables["wo"]])
    built.step()
    wo_after = built.session.run(variables["wo"])
  finally:
    built.close()
  rng = np.random.RandomState(0)
  shape = (spec.batch, spec.length, spec.d_model)
  x, target = rng.randn(*shape), rng.randn(*shape)
  hidden = np.maximum(x @ wi, 0.0)
  grad = np.einsum("blh,bld->hd", hidden, target) / spec.tokens
  np.testing.assert_allclose(wo_after, wo - 0.5 * grad, rtol=1e-4,
                             atol=1e-5)
