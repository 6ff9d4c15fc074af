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
