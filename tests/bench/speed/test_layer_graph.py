"""Every speed contender builds and trains a step, configured alike.

`make bench` builds these exact graphs; a contender that cannot be built
(e.g. the dense FFN when the stand-in model's ensemble dims were a tuple)
must fail here, in the fast suite, not hours into a benchmark.
"""

import math

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
