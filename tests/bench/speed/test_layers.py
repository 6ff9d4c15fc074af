"""Layer timings turned into ratios against each layer's own baselines.

No timings: bookkeeping checked against hand-computed values.
"""

import math

from switch_mtf.bench.speed import flops
from switch_mtf.bench.speed import layer_graph
from switch_mtf.bench.speed import layers as speed


def _block_result():
  def contender(kind, ms, **spec):
    s = layer_graph.LayerSpec(kind=kind, **spec)
    # Stored counts are ignored: derived() counts from the spec.
    return {"spec": s.as_dict(), "median_ms": ms,
            "useful_train_flops": 1.0, "executed_train_flops": 1.0}
  contenders = {
      "dense": contender("dense", 10.0),
      "einsum": contender("switch_einsum", 30.0),
      "gather": contender("switch_gather", 12.0),
      "moe1d": contender("moe1d_switch", 24.0),
      "moe1d_other_cf": contender("moe1d_switch", 99.0, capacity_factor=2.0),
  }
  return {"contenders": contenders, "probe_gflops": 400.0}


def test_derived_ratios_pair_each_layer_with_its_own_baselines():
  rows = speed.derived(_block_result())
  assert rows["dense"]["x_dense"] == 1.0
  assert rows["gather"]["x_dense"] == 1.2
  assert rows["einsum"]["x_moe1d_switch"] == 1.25  # not the cf-2.0 MoE1D
  assert rows["gather"]["x_moe1d_switch"] == 0.5
  # 3 x 4 x 4096 x 256 x 1024 = 12.9 GFLOP in 12 ms = 1074 GFLOP/s.
  useful = 3 * 4.0 * 4096 * 256 * 1024
  assert math.isclose(rows["gather"]["useful_gflops"], useful / 12e-3 / 1e9)
  assert math.isclose(rows["gather"]["useful_fraction_of_probe"],
                      useful / 12e-3 / 1e9 / 400)


def test_roofline_ratio_only_for_blocks_timed_with_the_bandwidth_probe():
  assert "x_roofline" not in speed.derived(_block_result())["gather"]
  block = dict(_block_result(), bandwidth_gbs=10.0)
  row = speed.derived(block)["gather"]
  roof = flops.roofline_ms(layer_graph.LayerSpec(kind="switch_gather"),
                           400.0, 10.0)
  assert math.isclose(row["x_roofline"], 12.0 / roof["roofline_ms"])
  assert row["bound"] == roof["bound"]
