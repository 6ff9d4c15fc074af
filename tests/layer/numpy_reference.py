"""An independent NumPy reference of a Switch (top-1) MoE layer.

Written from the paper (Fedus et al. 2022, §2) and the reference brief
(switch_reference.md §1-2), loop by loop and token by token, sharing no code
with switch_mtf, so the layer can be checked against it.
"""

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass
class Reference:
  output: np.ndarray  # [batch, length, d_model]
  load_balancing_loss: float  # before loss_coef
  expert_index: np.ndarray  # [batch, length] argmax expert
  kept: np.ndarray  # [batch, length] bool, dispatched
  gate: np.ndarray  # [batch, length] top-1 prob where kept, else 0
  router_probs: np.ndarray  # [batch, length, experts]
  num_groups: int
  capacity: int


def num_groups_for(num_tokens: int, max_group_size: int, shards: int) -> int:
  """Fewest groups >= tokens // max that split evenly and per shard."""
  for groups in range(max(1, num_tokens // max_group_size), num_tokens + 1):
    if groups % shards == 0 and num_tokens % groups == 0:
      return groups
  raise ValueError("no valid group count")


def _grouped(x, num_experts, nonpadding, group_size, capacity_factor,
             min_capacity, batch_shards=1):
  """(float64 tokens, real mask, groups, group size, capacity)."""
  batch, length, d_model = x.shape
  if nonpadding is None:
    nonpadding = np.ones([batch, length])
  tokens = x.reshape(-1, d_model).astype(np.float64)
  groups = num_groups_for(len(tokens), group_size, batch_shards)
  size = len(tokens) // groups
  capacity = max(min(size, int(np.floor(size * capacity_factor
                                        / num_experts))), min_capacity)
  return tokens, nonpadding.reshape(-1) == 1, groups, size, capacity


def relu(x):
  return np.maximum(x, 0.0)


def gelu(x):
  # The tanh approximation, as used by Mesh TF.
  return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi)
                                  * (x + 0.044715 * x ** 3)))


def switch_layer(x: np.ndarray,
                 router_kernel: np.ndarray,
                 wi: np.ndarray,
                 wo: np.ndarray,
                 nonpadding: Optional[np.ndarray] = None,
                 group_size: int = 1024,
                 capacity_factor: float = 1.25,
                 min_capacity: int = 4,
                 batch_shards: int = 1,
                 activation: str = "relu",
                 wi_gate: Optional[np.ndarray] = None) -> Reference:
  """Runs the layer in float64 on x [batch, length, d_model].

  router_kernel: [d_model, E]; wi: [E, d_model, H]; wo: [E, H, d_model];
  for "geglu", wi is the gelu factor (wi_0) and wi_gate the linear one.
  """
  batch, length, d_model = x.shape
  num_experts = router_kernel.shape[1]
  tokens, real, groups, size, capacity = _grouped(
      x, num_experts, nonpadding, group_size, capacity_factor, min_capacity,
      batch_shards)

  logits = tokens @ router_kernel.astype(np.float64)
  logits -= logits.max(axis=-1, keepdims=True)
  probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
  chosen = probs.argmax(axis=-1)

  output = np.zeros_like(tokens)
  kept = np.zeros(len(tokens), dtype=bool)
  gate = np.zeros(len(tokens))
  losses = []
  for g in range(groups):
    members = range(g * size, (g + 1) * size)
    fill = [0] * num_experts
    for t in members:  # token order decides who overflows
      if not real[t]:
        continue
      e = chosen[t]
      if fill[e] < capacity:
        fill[e] += 1
        kept[t] = True
        gate[t] = probs[t, e]
        h = tokens[t] @ wi[e].astype(np.float64)
        if activation == "relu":
          h = relu(h)
        elif activation == "gelu":
          h = gelu(h)
        elif activation == "geglu":
          h = gelu(h) * (tokens[t] @ wi_gate[e].astype(np.float64))
        else:
          raise ValueError(activation)
        output[t] = gate[t] * (h @ wo[e].astype(np.float64))
    # f and P over all group positions (padding included), then scaled by
    # the group's real-token fraction: Mesh TF's exact value (brief §1.6).
    f = np.array([np.mean([chosen[t] == e for t in members])
                  for e in range(num_experts)])
    p = probs[g * size:(g + 1) * size].mean(axis=0)
    real_fraction = np.mean(real[g * size:(g + 1) * size])
    losses.append(num_experts * np.sum(f * p) * real_fraction)

  return Reference(
      output=output.reshape(batch, length, d_model),
      load_balancing_loss=float(np.mean(losses)),
      expert_index=chosen.reshape(batch, length),
      kept=kept.reshape(batch, length),
      gate=gate.reshape(batch, length),
      router_probs=probs.reshape(batch, length, num_experts),
      num_groups=groups,
      capacity=capacity)


@dataclasses.dataclass
class RoutedReference:
  """Result of routed_layer; per-token arrays are [batch, length]."""
  output: np.ndarray  # [batch, length, d_model]
  load_balancing_loss: float  # before loss_coef
  experts_per_token: np.ndarray  # experts that processed each token
  choice: np.ndarray  # ntlb: which choice a token went to (1 = first), 0
  capacity: int


def _ffn(token, e, wi, wo, activation):
  h = token @ wi[e].astype(np.float64)
  if activation == "relu":
    h = relu(h)
  elif activation == "gelu":
    h = gelu(h)
  else:
    raise ValueError(activation)
  return h @ wo[e].astype(np.float64)


def _softmax(logits, axis):
  logits = logits - logits.max(axis=axis, keepdims=True)
  return np.exp(logits) / np.exp(logits).sum(axis=axis, keepdims=True)


def routed_layer(x: np.ndarray,
                 router_kernel: np.ndarray,
                 wi: np.ndarray,
                 wo: np.ndarray,
                 routing: str,
                 nonpadding: Optional[np.ndarray] = None,
                 group_size: int = 1024,
                 capacity_factor: float = 1.25,
                 min_capacity: int = 4,
                 ntlb_top_k: int = 4,
                 activation: str = "relu") -> RoutedReference:
  """Mesh TF's other gatings, token by token in float64 (brief §1.9).

  routing: "switch_max" (each expert keeps the tokens with the highest
  gates among those whose argmax it is), "ntlb" (up to ntlb_top_k passes,
  each offering still-unrouted tokens, in order, their next choice) or
  "expert_selection" (each expert takes the C tokens it scores highest in a
  softmax over the group's real tokens; outputs are averaged over the
  experts that took a token).
  """
  batch, length, d_model = x.shape
  num_experts = router_kernel.shape[1]
  tokens, real, groups, size, capacity = _grouped(
      x, num_experts, nonpadding, group_size, capacity_factor, min_capacity)
  logits = tokens @ router_kernel.astype(np.float64)
  probs = _softmax(logits, axis=-1)
  # Preference order of experts per token (ties: lower expert first).
  ranked = np.argsort(-probs, axis=-1, kind="stable")

  output = np.zeros_like(tokens)
  experts_per_token = np.zeros(len(tokens))
  choice = np.zeros(len(tokens), dtype=int)
  losses = []
  for g in range(groups):
    members = list(range(g * size, (g + 1) * size))
    real_fraction = np.mean(real[members])
    picks = []  # (token, expert, weight)
    if routing == "switch_max":
      for e in range(num_experts):
        wanting = [t for t in members if real[t] and ranked[t, 0] == e]
        wanting.sort(key=lambda t, e=e: (-probs[t, e], t))
        picks += [(t, e, probs[t, e]) for t in wanting[:capacity]]
      losses.append(_top1_loss(ranked[members, 0], probs[members],
                               num_experts) * real_fraction)
    elif routing == "ntlb":
      fill = [0] * num_experts
      for k in range(ntlb_top_k):
        for t in members:
          if real[t] and not choice[t]:
            e = ranked[t, k]
            if fill[e] < capacity:
              fill[e] += 1
              choice[t] = k + 1
              picks.append((t, e, probs[t, e]))
      losses.append(np.mean([
          _top1_loss(ranked[members, k], probs[members], num_experts)
          for k in range(ntlb_top_k)]) * real_fraction)
    elif routing == "expert_selection":
      slots = min(capacity, size)
      masked = logits[members] + np.where(real[members], 0.0, -1e9)[:, None]
      token_probs = _softmax(masked, axis=0)  # over the group's tokens
      chosen = []
      for e in range(num_experts):
        best = np.argsort(-token_probs[:, e], kind="stable")[:slots]
        chosen += [(members[i], e, token_probs[i, e]) for i in best]
      count = {}
      for t, _, _ in chosen:
        count[t] = count.get(t, 0) + 1
      picks = [(t, e, w / count[t]) for t, e, w in chosen]
      mean_probs = token_probs.mean(axis=1) * real[members]
      losses.append(np.sum(real[members]) * np.sum(mean_probs ** 2))
    else:
      raise ValueError(routing)
    for t, e, weight in picks:
      output[t] += weight * _ffn(tokens[t], e, wi, wo, activation)
      experts_per_token[t] += 1
  return RoutedReference(
      output=output.reshape(batch, length, d_model),
      load_balancing_loss=float(np.mean(losses)),
      experts_per_token=experts_per_token.reshape(batch, length),
      choice=choice.reshape(batch, length),
      capacity=capacity)


def _top1_loss(chosen, probs, num_experts):
  """E * sum_e f_e * P_e over all group positions (padding included)."""
  f = np.array([np.mean(chosen == e) for e in range(num_experts)])
  return num_experts * np.sum(f * probs.mean(axis=0))


def experts_self_attention(x: np.ndarray,
                           router_kernel: np.ndarray,
                           wi: np.ndarray,
                           q_wo: np.ndarray,
                           k_wo: np.ndarray,
                           o: np.ndarray,
                           num_heads: int,
                           capacity: int) -> np.ndarray:
  """Self-attention whose q and k = v are top-1 expert FFNs (paper App. A).

  One group (all batch x length tokens, token order), argmax routing,
  relu experts with two output projections; a dropped token's q and kv are
  zero. Scores are q.k / sqrt(d_kv) per head, softmax over all positions of
  its sequence (no padding, no causal mask), then the dense output `o`.
  x: [batch, length, d_model]; q_wo, k_wo: [E, H, heads * d_kv];
  o: [heads * d_kv, d_model].
  """
  batch, length, d_model = x.shape
  tokens = x.reshape(-1, d_model).astype(np.float64)
  probs = _softmax(tokens @ router_kernel.astype(np.float64), axis=-1)
  flat = q_wo.shape[-1]
  q = np.zeros([len(tokens), flat])
  kv = np.zeros([len(tokens), flat])
  fill = [0] * router_kernel.shape[1]
  for t, token in enumerate(tokens):
    e = int(probs[t].argmax())
    if fill[e] < capacity:
      fill[e] += 1
      h = relu(token @ wi[e].astype(np.float64))
      q[t] = probs[t, e] * (h @ q_wo[e].astype(np.float64))
      kv[t] = probs[t, e] * (h @ k_wo[e].astype(np.float64))
  d_kv = flat // num_heads
  q = q.reshape(batch, length, num_heads, d_kv) / np.sqrt(d_kv)
  kv = kv.reshape(batch, length, num_heads, d_kv)
  scores = np.einsum("bqhd,bkhd->bhqk", q, kv)
  weights = _softmax(scores, axis=-1)
  heads = np.einsum("bhqk,bkhd->bqhd", weights, kv)
  return heads.reshape(batch, length, flat) @ o.astype(np.float64)
