"""No-Token-Left-Behind routing (paper Appendix B, Mesh TF's `ntlb` gating).

Top-1 routing first; tokens that overflowed their expert are then offered
to their second-best expert, and so on for up to k passes, each pass
filling the slots the earlier ones left free, in token order within the
group. A token still takes at most one slot, so the result is an ordinary
Routing record (both dispatch modes apply unchanged); its gate is the
router probability of the expert it finally went to. As in Mesh TF, the
load-balancing loss is the mean of the usual loss over the k choice masks.
"""

from typing import List

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

from switch_mtf.layer import router as router_lib


def route(inputs: mtf.Tensor,
          nonpadding: mtf.Tensor,
          experts_dim: mtf.Dimension,
          capacity_dim: mtf.Dimension,
          settings: router_lib.RouterSettings,
          top_k: int,
          cumsum: str = router_lib.CUMSUM_MATMUL) -> router_lib.Routing:
  """Routes grouped tokens to experts in up to `top_k` passes.

  Args are router.route's; top_k (1 <= top_k <= experts) is the number of
  passes (Mesh TF's ntlb_top_k), and the policy is "input_jitter" or
  "argmax" (the only ones Mesh TF's ntlb applies).

  Returns:
    a Routing record whose kept_by_pass holds one mask per pass.
  """
  if not 1 <= top_k <= experts_dim.size:
    raise ValueError("ntlb top_k=%d must be in [1, %d experts]."
                     % (top_k, experts_dim.size))
  router_lib.check_policy(settings.policy, "router_policy", router_lib.NTLB)
  group_dim = inputs.shape.dims[-2]
  logits = router_lib.router_logits(inputs, experts_dim, settings)
  router_probs = mtf.to_float(mtf.softmax(logits, reduced_dim=experts_dim))
  k_dim = mtf.Dimension("ntlb_k", top_k)
  # [O, G, S, k]: the k best experts of every token and their probabilities.
  choice_gates, choice_indices = mtf.top_k(router_probs, experts_dim, k_dim)
  load_balancing_loss = router_lib.load_balancing(
      mtf.one_hot(choice_indices, experts_dim, dtype=tf.float32),
      router_probs, nonpadding, group_dim, experts_dim)

  gates = _unstack(choice_gates, k_dim)
  indices = _unstack(choice_indices, k_dim)
  capacity = float(capacity_dim.size)
  filled = mtf.zeros(inputs.mesh, mtf.Shape(nonpadding.shape.dims[:2]
                                            + [experts_dim]))
  unrouted = nonpadding  # padding never routes
  kept_by_pass = []
  position_in_expert = expert = gate = None
  for choice_gate, choice_index in zip(gates, indices):
    wanted = mtf.one_hot(choice_index, experts_dim, dtype=tf.float32) * (
        unrouted)
    # Slots after the ones earlier passes filled, in token order.
    position = mtf.reduce_sum(
        (filled + router_lib.tokens_before(wanted, group_dim, cumsum))
        * wanted, reduced_dim=experts_dim)
    fits = unrouted * mtf.to_float(mtf.less(position, capacity))
    filled += mtf.reduce_sum(wanted * fits, reduced_dim=group_dim)
    unrouted -= fits
    kept_by_pass.append(fits)
    position_in_expert = _accumulate(position_in_expert, fits * position)
    expert = _accumulate(expert, fits * mtf.to_float(choice_index))
    gate = _accumulate(gate, fits * choice_gate)
  kept = mtf.add_n(kept_by_pass)
  # Dropped tokens keep their first choice (they take no slot).
  expert_index = mtf.to_int32(
      expert + (1.0 - kept) * mtf.to_float(indices[0]))
  return router_lib.Routing(
      expert_index=expert_index,
      position_in_expert=position_in_expert,
      kept=kept,
      gate=gate,
      top1_probability=gates[0],
      first_choice=indices[0],
      nonpadding=nonpadding,
      router_probs=router_probs,
      experts_dim=experts_dim,
      capacity_dim=capacity_dim,
      load_balancing_loss=load_balancing_loss,
      router_z_loss=router_lib.optional_z_loss(settings, logits, nonpadding,
                                               experts_dim),
      kept_by_pass=tuple(kept_by_pass))


def _unstack(x: mtf.Tensor, dim: mtf.Dimension) -> List[mtf.Tensor]:
  """Slices of x along dim, each without that dim."""
  rest = mtf.Shape([d for d in x.shape.dims if d != dim])
  return [mtf.reshape(piece, rest) for piece in mtf.split(x, dim, dim.size)]


def _accumulate(total, term: mtf.Tensor) -> mtf.Tensor:
  return term if total is None else total + term
