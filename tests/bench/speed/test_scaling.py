"""The all-to-all traffic model and the MoE layers read from gin."""

from switch_mtf.bench.speed import scaling


def test_all_to_all_bytes_against_hand_count():
  layer = {"stack": "encoder", "experts": 8, "group_size": 1024,
           "capacity_factor": 1.25, "min_capacity": 4}
  # 4096 tokens in 2 microbatches of 2048 over 2 batch shards: 2 groups of
  # 1024, capacity floor(1024 * 1.25 / 8) = 160; 4 all-to-alls per layer
  # of groups x experts x capacity x d_model bfloat16 values.
  per_microbatch = 4 * 2 * 8 * 160 * 256 * 2
  assert scaling.all_to_all_bytes([layer], 256, {"encoder": 4096}, 2, 2) == (
      2 * per_microbatch)
  decoder = dict(layer, stack="decoder", experts=4, min_capacity=400)
  # 1024 decoder tokens, one microbatch, one group; the minimum capacity
  # 400 wins over floor(1024 * 1.25 / 4) = 320.
  assert scaling.all_to_all_bytes(
      [decoder], 256, {"decoder": 1024}, 1, 1, bytes_per_value=4) == (
          4 * 1 * 4 * 400 * 256 * 4)


def test_moe_layers_of_switch_tiny():
  layers, d_model = scaling.moe_layers(["models/switch_tiny.gin"])
  assert d_model == 128
  assert [l["stack"] for l in layers] == ["encoder", "decoder"]
  assert {(l["experts"], l["capacity_factor"]) for l in layers} == {
      (8, 1.25)}
