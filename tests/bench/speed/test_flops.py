"""FLOP counts of the contenders against hand-computed values."""

from switch_mtf.bench.speed import flops
from switch_mtf.bench.speed import layer_graph

# 4096 tokens, d 256, hidden 1024: one FFN pass = 4 * 4096 * 256 * 1024.
FFN = 4.0 * 4096 * 256 * 1024


def _spec(kind, **kwargs):
  return layer_graph.LayerSpec(kind=kind, **kwargs)


def test_useful_flops_are_the_tokens_expert_passes_that_fit():
  assert flops.useful_train_flops(_spec("dense")) == 3 * FFN
  for kind in ("switch_einsum", "switch_gather", "moe1d_switch"):
    assert flops.useful_train_flops(_spec(kind)) == 3 * FFN
  # Top-2 wants two passes per token but has Switch's slots: at cf 1.0
  # 4 groups x 8 experts x 128 = 4096 slots, one pass per token.
  assert flops.useful_train_flops(_spec("moe1d_top2")) == 3 * FFN
  assert flops.useful_train_flops(
      _spec("moe1d_top2", capacity_factor=2.0)) == 3 * 2 * FFN
  # Below cf 1.0 even Switch cannot give every token its expert.
  assert flops.useful_train_flops(
      _spec("switch_gather", capacity_factor=0.5)) == 3 * FFN / 2


def test_executed_flops_add_router_and_one_hot_einsums():
  router = 2.0 * 4096 * 256 * 8
  # cf 1.25: capacity 160 per group of 1024, 4 x 8 x 160 = 5120 slots.
  experts = 4.0 * 5120 * 256 * 1024
  one_hot = 2 * 2.0 * 4096 * 8 * 160 * 256
  gather = _spec("switch_gather", capacity_factor=1.25)
  einsum = _spec("switch_einsum", capacity_factor=1.25)
  assert flops.executed_train_flops(gather) == 3 * (experts + router)
  assert flops.executed_train_flops(einsum) == 3 * (experts + router
                                                    + one_hot)
  assert flops.executed_train_flops(_spec("dense")) == 3 * FFN


def test_bytes_moved_by_a_training_step():
  # Dense: 2 x 256 x 1024 weights x 6 passes; 4096 x (2 x 256 + 1024)
  # activations x 5 passes; float32.
  assert flops.train_bytes(_spec("dense")) == 4 * (
      6 * 2 * 256 * 1024 + 5 * 4096 * (2 * 256 + 1024))
  # Switch gather, E8 cf1.0: 8 experts + the router; token rows in and
  # out, slot rows (4096 slots) in, hidden and out, router logits.
  weights = 8 * 2 * 256 * 1024 + 256 * 8
  values = 4096 * 2 * 256 + 4096 * (2 * 256 + 1024) + 4096 * 8
  assert flops.train_bytes(_spec("switch_gather")) == 4 * (
      6 * weights + 5 * values)
  # The one-hot modes also move dispatch and combine: 4 x 1024 x 8 x 128.
  assert flops.train_bytes(_spec("switch_einsum")) == 4 * (
      6 * weights + 5 * (values + 2 * 4 * 1024 * 8 * 128))


def test_roofline_is_the_slower_of_compute_and_memory():
  spec = _spec("switch_gather")
  compute_ms = flops.executed_train_flops(spec) / 400e9 * 1e3
  memory_ms = flops.train_bytes(spec) / 10e9 * 1e3
  roof = flops.roofline_ms(spec, peak_gflops=400.0, bandwidth_gbs=10.0)
  assert roof["roofline_ms"] == max(compute_ms, memory_ms)
  assert roof["bound"] == ("memory" if memory_ms > compute_ms else "compute")
  fast_memory = flops.roofline_ms(spec, peak_gflops=400.0, bandwidth_gbs=1e6)
  assert fast_memory["bound"] == "compute"
  assert fast_memory["roofline_ms"] == compute_ms
