"""Experts choose tokens: Mesh TF's `expert_selection` gating.

The precursor of Expert-Choice routing (Zhou et al. 2022): the router's
logits are normalised over the group's tokens (a softmax per expert, padding
masked out), and every expert takes the C tokens it scores highest. A token
may so be picked by several experts or by none (it then passes through the
residual alone); its output is the sum of its experts' outputs weighted by
their probabilities, divided by how many experts picked it. The load-balancing
loss pushes the mean over experts of these probabilities towards uniform
over the group's real tokens (1.0 when uniform).

The routing is slot-major, ExpertChoiceRouting: which token fills each
[expert, slot] and with what weight; dispatch.py runs it as one-hot einsums
or as a gather and a segment sum with identical results.
"""

import dataclasses
from typing import Optional

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

from switch_mtf.layer import router as router_lib

# Mesh TF's mask: padding logits get this added before the group softmax.
_PADDING_LOGIT = -1e9


@dataclasses.dataclass(frozen=True)
class ExpertChoiceRouting:
  """Which token fills each expert slot, for tokens laid out [O, G, S].

  Per-slot fields have shape [O, G, experts, capacity]; every slot is filled
  (C <= S). Per-token fields have shape [O, G, S]; float32 unless noted.
  """
  slot_token: mtf.Tensor  # int32 group position of each slot's token.
  slot_weight: mtf.Tensor  # combine weight: probability / experts per token.
  experts_per_token: mtf.Tensor  # how many experts picked each token.
  nonpadding: mtf.Tensor  # 1.0 = real token.
  token_probs: mtf.Tensor  # [O, G, S, experts] softmax over the group.
  experts_dim: mtf.Dimension  # unsplit experts dimension.
  capacity_dim: mtf.Dimension  # slots per expert per group (<= S).
  group_dim: mtf.Dimension  # tokens per group.
  load_balancing_loss: mtf.Tensor  # scalar, before loss_coef/microbatches.
  router_z_loss: Optional[mtf.Tensor]  # scalar mean logsumexp^2, if asked.


def route(inputs: mtf.Tensor,
          nonpadding: mtf.Tensor,
          experts_dim: mtf.Dimension,
          capacity_dim: mtf.Dimension,
          settings: router_lib.RouterSettings) -> ExpertChoiceRouting:
  """Lets every expert pick its capacity_dim.size tokens of each group.

  Args are router.route's; the policy is "input_jitter", "input_dropout"
  or "argmax", and capacity_dim must not exceed the group size.

  Returns:
    an ExpertChoiceRouting record.
  """
  router_lib.check_policy(settings.policy, "router_policy",
                          router_lib.EXPERT_SELECTION)
  group_dim = inputs.shape.dims[-2]
  if capacity_dim.size > group_dim.size:
    raise ValueError(
        "expert_selection: each expert picks %d tokens from groups of %d; "
        "the capacity must not exceed the group size."
        % (capacity_dim.size, group_dim.size))
  logits = router_lib.router_logits(inputs, experts_dim, settings)
  masked_logits = logits + mtf.cast((1.0 - nonpadding) * _PADDING_LOGIT,
                                    logits.dtype)
  token_probs = mtf.to_float(mtf.softmax(masked_logits,
                                         reduced_dim=group_dim))
  # [O, G, experts, C]: each expert's best tokens (ties: earlier first).
  slot_probs, slot_token = mtf.top_k(token_probs, reduced_dim=group_dim,
                                     k_dim=capacity_dim)
  experts_per_token = _picks_per_token(slot_token, group_dim)
  slot_weight = slot_probs / mtf.maximum(
      _per_slot(experts_per_token, slot_token), 1.0)

  mean_probs = mtf.reduce_mean(token_probs, reduced_dim=experts_dim)
  mean_probs *= nonpadding
  real_tokens = mtf.reduce_sum(nonpadding, reduced_dim=group_dim)
  load_balancing_loss = mtf.reduce_mean(
      mean_probs * mean_probs * real_tokens) * float(group_dim.size)
  return ExpertChoiceRouting(
      slot_token=slot_token,
      slot_weight=slot_weight,
      experts_per_token=experts_per_token,
      nonpadding=nonpadding,
      token_probs=token_probs,
      experts_dim=experts_dim,
      capacity_dim=capacity_dim,
      group_dim=group_dim,
      load_balancing_loss=load_balancing_loss,
      router_z_loss=router_lib.optional_z_loss(settings, logits, nonpadding,
                                               experts_dim))


def _picks_per_token(slot_token: mtf.Tensor,
                     group_dim: mtf.Dimension) -> mtf.Tensor:
  """[O, G, S] float32: how many slots hold each token. No gradient."""
  outer_dim, groups_dim = slot_token.shape.dims[:2]

  def tf_fn(index_slice):
    outer, groups = index_slice.shape.as_list()[:2]
    ids = flat_token_ids(index_slice, group_dim.size)
    counts = tf.math.unsorted_segment_sum(
        tf.ones_like(ids, dtype=tf.float32), ids,
        num_segments=outer * groups * group_dim.size)
    return tf.reshape(counts, [outer, groups, group_dim.size])

  return mtf.slicewise(tf_fn, [slot_token],
                       output_shape=mtf.Shape([outer_dim, groups_dim,
                                               group_dim]),
                       output_dtype=tf.float32,
                       splittable_dims=[outer_dim, groups_dim],
                       grad_function=0, name="picks_per_token")


def _per_slot(per_token: mtf.Tensor, slot_token: mtf.Tensor) -> mtf.Tensor:
  """[O, G, S] values read at each slot's token: [O, G, E, C]. No gradient."""
  outer_dim, groups_dim = slot_token.shape.dims[:2]

  def tf_fn(value_slice, index_slice):
    outer, groups, experts, capacity = index_slice.shape.as_list()
    picked = tf.gather(value_slice, tf.reshape(
        index_slice, [outer, groups, experts * capacity]), batch_dims=2)
    return tf.reshape(picked, [outer, groups, experts, capacity])

  return mtf.slicewise(tf_fn, [per_token, slot_token],
                       output_shape=slot_token.shape,
                       output_dtype=per_token.dtype,
                       splittable_dims=[outer_dim, groups_dim],
                       grad_function=0, name="per_slot")


def flat_token_ids(index_slice: tf.Tensor, group_size: int) -> tf.Tensor:
  """[O, G, E, C] group positions -> ids into a flat [O * G * S]."""
  outer, groups = index_slice.shape.as_list()[:2]
  base = tf.reshape(tf.range(outer * groups) * group_size,
                    [outer, groups, 1, 1])
  return base + index_slice
