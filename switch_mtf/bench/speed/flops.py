"""FLOP counts of the feed-forward contenders (forward x 3 = fwd+bwd).

"Useful" FLOPs are what the paper counts: each token through its expert
FFN(s), the FLOP-matched dense FFN for Switch and twice that for top-2, but
at most what the capacity slots hold: Mesh TF gives top-2 the same capacity
as Switch, so at capacity factor 1.0 it computes one token's worth of
expert FFN per token, not two.
"Executed" FLOPs estimate what the layer really multiplies: experts over all
capacity slots (capacity slack included), the one-hot dispatch and combine
einsums (einsum modes only) and the router (the anchor's `flops_exec_est`).
"""

from typing import Dict

from switch_mtf.bench.speed import layer_graph

# Backward costs about twice the forward (two matmuls per forward matmul).
FWD_BWD = 3


def dense_ffn_forward(tokens: int, d_model: int, hidden: int) -> float:
  """Two matmuls, [N, d] x [d, h] and [N, h] x [h, d]: 2 * 2 * N * d * h."""
  return 4.0 * tokens * d_model * hidden


def useful_train_flops(spec: layer_graph.LayerSpec) -> float:
  assignments = layer_graph.EXPERTS_PER_TOKEN[spec.kind] * spec.tokens
  if spec.is_moe:
    assignments = min(assignments, _slots(spec))
  return FWD_BWD * dense_ffn_forward(assignments, spec.d_model, spec.hidden)


def _slots(spec: layer_graph.LayerSpec) -> int:
  """Expert capacity slots of the whole call: groups x experts x capacity."""
  shape = spec.groups_and_capacity()
  return shape["num_groups"] * spec.num_experts * shape["capacity"]


def executed_train_flops(spec: layer_graph.LayerSpec) -> float:
  if not spec.is_moe:
    return useful_train_flops(spec)
  shape = spec.groups_and_capacity()
  experts = dense_ffn_forward(_slots(spec), spec.d_model, spec.hidden)
  router = 2.0 * spec.tokens * spec.d_model * spec.num_experts
  one_hot = 0.0
  if spec.kind != layer_graph.SWITCH_GATHER:
    # dispatch and combine: [N, d] x [N-in-group, E, C] each.
    one_hot = 2 * 2.0 * spec.tokens * spec.num_experts * shape[
        "capacity"] * spec.d_model
  return FWD_BWD * (experts + router + one_hot)


def describe(spec: layer_graph.LayerSpec) -> Dict[str, float]:
  return {"useful_train_flops": useful_train_flops(spec),
          "executed_train_flops": executed_train_flops(spec)}
