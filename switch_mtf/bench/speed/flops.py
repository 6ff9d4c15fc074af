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

from typing import Any, Dict

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


FLOAT32_BYTES = 4
# Per training step each weight is read by the forward and by the backward
# (input gradient), its gradient written, and SGD reads both and writes it.
WEIGHT_PASSES = 6
# Each activation is written once forward, read by the next op and again by
# the backward, whose gradient of it is written and read once more.
ACTIVATION_PASSES = 5


def params(spec: layer_graph.LayerSpec) -> int:
  """Weights of the layer: wi and wo per expert, plus the d x E router."""
  ffn = 2 * spec.d_model * spec.hidden
  if not spec.is_moe:
    return ffn
  return spec.num_experts * ffn + spec.d_model * spec.num_experts


def train_bytes(spec: layer_graph.LayerSpec) -> float:
  """Estimated bytes moved to and from memory by one training step.

  Weights x WEIGHT_PASSES plus activations x ACTIVATION_PASSES: the input,
  hidden and output rows of every token (dense) or every capacity slot
  (experts), the router's [tokens, E] logits and, in the one-hot modes, the
  dispatch and combine tensors of groups x group size x E x capacity.
  """
  n, d, h = spec.tokens, spec.d_model, spec.hidden
  if not spec.is_moe:
    values = n * (2 * d + h)
  else:
    slots = _slots(spec)
    shape = spec.groups_and_capacity()
    values = n * 2 * d + slots * (2 * d + h) + n * spec.num_experts
    if spec.kind != layer_graph.SWITCH_GATHER:
      values += 2 * (shape["num_groups"] * shape["group_size"]
                     * spec.num_experts * shape["capacity"])
  return FLOAT32_BYTES * (WEIGHT_PASSES * params(spec)
                          + ACTIVATION_PASSES * values)


def roofline_ms(spec: layer_graph.LayerSpec, peak_gflops: float,
                bandwidth_gbs: float) -> Dict[str, Any]:
  """The step's lower bound: max(executed FLOPs / peak, bytes / bandwidth)."""
  compute = executed_train_flops(spec) / (peak_gflops * 1e9) * 1e3
  memory = train_bytes(spec) / (bandwidth_gbs * 1e9) * 1e3
  return {"roofline_ms": max(compute, memory), "compute_ms": compute,
          "memory_ms": memory,
          "bound": "memory" if memory > compute else "compute"}


def describe(spec: layer_graph.LayerSpec) -> Dict[str, float]:
  return {"useful_train_flops": useful_train_flops(spec),
          "executed_train_flops": executed_train_flops(spec),
          "train_bytes": train_bytes(spec)}
