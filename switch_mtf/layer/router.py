"""The router: which expert each token goes to, and with what weight.

Top-1 routing as in the paper (Fedus et al. 2022, §2.1-2.2) and Mesh TF's
`switch` gating: a float32 softmax router ("selective precision", §2.4),
optional exploration noise on the router input only (or sampling the expert,
Table 11), the un-renormalised probability of the chosen expert as the gate,
capacity enforced by token order within the group (or, as Mesh TF's
`switch_max`, by gate), and the load-balancing loss computed per group.
ntlb.py (rerouting overflow tokens) and expert_choice.py (experts choose
tokens) are the other routings of Mesh TF's moe.py. The result is a small
typed record so that dispatch, experts and metrics never reach into router
internals.
"""

import dataclasses
from typing import Optional, Tuple

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

from switch_mtf.layer import priority

INPUT_JITTER = "input_jitter"
INPUT_DROPOUT = "input_dropout"
ARGMAX = "argmax"
SAMPLE = "sample"  # sample the expert from softmax(logits / temperature)
POLICIES = (INPUT_JITTER, INPUT_DROPOUT, ARGMAX, SAMPLE)

# Routings, named like Mesh TF's `MoE1D.moe_gating` values.
SWITCH = "switch"  # top-1; slots by token order (the paper)
SWITCH_MAX = "switch_max"  # top-1; slots by gate (probability priority)
NTLB = "ntlb"  # top-1, overflow rerouted to the next choices (App. B)
EXPERT_SELECTION = "expert_selection"  # each expert picks its top-C tokens
ROUTINGS = (SWITCH, SWITCH_MAX, NTLB, EXPERT_SELECTION)
# The policies Mesh TF's gating functions apply; any other is ignored there
# (e.g. input_dropout in ntlb), so asking for it is an error here.
ROUTING_POLICIES = {
    SWITCH: POLICIES,
    SWITCH_MAX: POLICIES,
    NTLB: (INPUT_JITTER, ARGMAX),
    EXPERT_SELECTION: (INPUT_JITTER, INPUT_DROPOUT, ARGMAX),
}

# Router precision: float32 is the paper's selective precision (§2.4);
# bfloat16 is the unstable ablation of its Table 2.
ROUTER_DTYPES = {"float32": tf.float32, "bfloat16": tf.bfloat16}

# How token positions within their expert are counted; both are exact.
CUMSUM_MATMUL = "matmul"  # mtf.cumsum: an [S, S] triangular einsum (TPU)
CUMSUM_SCAN = "scan"  # tf.math.cumsum per slice: O(S) instead of O(S^2)


@dataclasses.dataclass(frozen=True)
class Routing:
  """Routing decisions for tokens laid out as [outer_batch, groups, group].

  Each token goes to at most one expert slot. Every per-token field has
  shape [O, G, S] and dtype float32 unless noted.
  """
  expert_index: mtf.Tensor  # int32, the expert the token is sent to.
  position_in_expert: mtf.Tensor  # slot in that expert; valid where kept.
  kept: mtf.Tensor  # 1.0 = dispatched; 0.0 = padding or overflow.
  gate: mtf.Tensor  # router probability of that expert where kept, else 0.
  top1_probability: mtf.Tensor  # top-1 probability of every token.
  first_choice: mtf.Tensor  # int32, argmax or sampled expert (pre-capacity).
  nonpadding: mtf.Tensor  # 1.0 = real token.
  router_probs: mtf.Tensor  # [O, G, S, experts] softmax over experts.
  experts_dim: mtf.Dimension  # unsplit experts dimension of router_probs.
  capacity_dim: mtf.Dimension  # slots per expert per group.
  load_balancing_loss: mtf.Tensor  # scalar, before loss_coef/microbatches.
  router_z_loss: Optional[mtf.Tensor]  # scalar mean logsumexp^2, if asked.
  # NTLB only: per pass p, 1.0 where the token was dispatched to its p-th
  # choice (pass 1 = first choice); empty for the other routings.
  kept_by_pass: Tuple[mtf.Tensor, ...] = ()


@dataclasses.dataclass(frozen=True)
class RouterSettings:
  """How a router computes its logits: the knobs every routing shares."""
  policy: str  # one of POLICIES; input noise applies in training only
  train: bool  # whether this is a training step
  # The model's variable dtype; the router kernel is read in router_dtype.
  variable_dtype: mtf.VariableDType
  jitter_eps: float = 1e-2  # eps of the Uniform(1-eps, 1+eps) jitter
  dropout_rate: float = 0.1  # router-input dropout of input_dropout
  compute_z_loss: bool = False  # also compute the ST-MoE router z-loss
  # Router input, kernel, logits and softmax dtype: float32 (selective
  # precision) or bfloat16 (the Table 2 ablation); masks, positions and
  # losses downstream are float32 either way.
  router_dtype: tf.DType = tf.float32
  name: str = "switch_gating"  # variable scope of the router kernel


def check_routing(routing: str) -> str:
  """Returns `routing` or raises a ValueError naming the choices."""
  if routing not in ROUTINGS:
    raise ValueError(
        "Switch.routing=%r is not known; use %r (the paper), %r (slots by "
        "gate), %r (overflow rerouted) or %r (experts choose tokens)."
        % ((routing,) + ROUTINGS))
  return routing


def check_policy(policy: str, knob: str, routing: str = SWITCH) -> str:
  """Returns `policy` or raises a ValueError naming the knob and choices."""
  if policy not in POLICIES:
    raise ValueError(
        "Switch.%s=%r is not a known router policy; use one of %s "
        "(the paper uses %r for training and %r for evaluation)."
        % (knob, policy, ", ".join(POLICIES), INPUT_JITTER, ARGMAX))
  if policy not in ROUTING_POLICIES[routing]:
    raise ValueError(
        "Switch.%s=%r does not apply to Switch.routing=%r (Mesh TF's %s "
        "gating ignores it); use one of %s." % (
            knob, policy, routing, routing,
            ", ".join(ROUTING_POLICIES[routing])))
  return policy


def check_router_dtype(name: str) -> tf.DType:
  """Returns the tf dtype for `name` or raises a ValueError naming choices."""
  if name not in ROUTER_DTYPES:
    raise ValueError(
        "Switch.router_dtype=%r is not supported; use %s (the paper's "
        "selective precision is \"float32\")."
        % (name, " or ".join('"%s"' % k for k in ROUTER_DTYPES)))
  return ROUTER_DTYPES[name]


def router_logits(inputs: mtf.Tensor, experts_dim: mtf.Dimension,
                  settings: RouterSettings) -> mtf.Tensor:
  """[O, G, S, experts] router logits in router_dtype, input noise applied.

  Selective precision (paper §2.4): everything from the router matmul to
  the masks runs in float32 (unless the bfloat16 ablation asks otherwise);
  the noise touches the router input only, so experts still get the
  un-noised inputs.
  """
  router_inputs = mtf.cast(inputs, settings.router_dtype)
  if settings.train and settings.policy == INPUT_JITTER:
    router_inputs = mtf.layers.multiplicative_jitter(router_inputs,
                                                     settings.jitter_eps)
  elif settings.policy == INPUT_DROPOUT:
    router_inputs = mtf.dropout(router_inputs, is_training=settings.train,
                                keep_prob=1.0 - settings.dropout_rate)
  variable_dtype = settings.variable_dtype
  router_variable_dtype = mtf.VariableDType(
      variable_dtype.master_dtype, variable_dtype.slice_dtype,
      settings.router_dtype)
  return mtf.layers.dense(router_inputs, experts_dim, use_bias=False,
                          variable_dtype=router_variable_dtype,
                          name=settings.name)


def optional_z_loss(settings: RouterSettings, logits: mtf.Tensor,
                    nonpadding: mtf.Tensor,
                    experts_dim: mtf.Dimension) -> Optional[mtf.Tensor]:
  """The router z-loss of the logits if the settings ask for it."""
  if not settings.compute_z_loss:
    return None
  return router_z_loss(mtf.to_float(logits), nonpadding, experts_dim)


def route(inputs: mtf.Tensor,
          nonpadding: mtf.Tensor,
          experts_dim: mtf.Dimension,
          capacity_dim: mtf.Dimension,
          settings: RouterSettings,
          cumsum: str = CUMSUM_MATMUL,
          temperature: float = 1.0,
          gate_priority: bool = False) -> Routing:
  """Routes grouped tokens to experts, top-1 (Mesh TF switch / switch_max).

  Args:
    inputs: [O, G, S, d_model] tokens in the activation dtype.
    nonpadding: [O, G, S] float32, 1.0 for real tokens and 0.0 for padding.
    experts_dim: the experts dimension, not split on the mesh (the router is
      replicated, as in Mesh TF).
    capacity_dim: slots per expert per group.
    settings: the router's knobs; a "sample" policy samples in any mode it
      is the policy of.
    cumsum: CUMSUM_MATMUL or CUMSUM_SCAN, how positions are counted.
    temperature: of the "sample" policy: experts are drawn from
      softmax(logits / temperature) (Gumbel trick, mtf.sample_with_temperature).
    gate_priority: slots go to the tokens with the highest gates of each
      expert (Mesh TF's switch_max) instead of by token order.

  Returns:
    a Routing record.
  """
  group_dim = inputs.shape.dims[-2]
  logits = router_logits(inputs, experts_dim, settings)
  router_probs = mtf.to_float(mtf.softmax(logits, reduced_dim=experts_dim))
  logits = mtf.to_float(logits)
  top1_probability, top1_index = mtf.top_1(router_probs,
                                           reduced_dim=experts_dim)
  if settings.policy == SAMPLE:
    # Mesh TF: the Gumbel-max draw on the logits; the gate is the softmax
    # probability of the drawn expert (not renormalised by temperature).
    expert_index = mtf.sample_with_temperature(logits, experts_dim,
                                               temperature=temperature)
    gate = mtf.gather(router_probs, expert_index, experts_dim)
  else:
    expert_index, gate = top1_index, top1_probability
  expert_one_hot = mtf.one_hot(expert_index, experts_dim, dtype=tf.float32)

  load_balancing_loss = load_balancing(
      expert_one_hot, router_probs, nonpadding, group_dim, experts_dim)

  if gate_priority:
    position_in_expert = priority.positions_by_gate(
        gate * nonpadding, expert_index, nonpadding, experts_dim.size)
  else:
    # Slots go by token order within the group; padding takes no slot.
    routed = expert_one_hot * nonpadding
    position_in_expert = mtf.reduce_sum(
        tokens_before(routed, group_dim, cumsum) * routed,
        reduced_dim=experts_dim)
  # Overflow tokens are dropped.
  kept = nonpadding * mtf.to_float(
      mtf.less(position_in_expert, float(capacity_dim.size)))

  return Routing(
      expert_index=expert_index,
      position_in_expert=position_in_expert,
      kept=kept,
      gate=gate * kept,
      top1_probability=top1_probability,
      first_choice=expert_index,
      nonpadding=nonpadding,
      router_probs=router_probs,
      experts_dim=experts_dim,
      capacity_dim=capacity_dim,
      load_balancing_loss=load_balancing_loss,
      router_z_loss=optional_z_loss(settings, logits, nonpadding,
                                    experts_dim))


def tokens_before(routed: mtf.Tensor, group_dim: mtf.Dimension,
                  cumsum: str) -> mtf.Tensor:
  """Exclusive cumulative sum of `routed` along the group (token order)."""
  if cumsum == CUMSUM_SCAN:
    return _exclusive_scan(routed, group_dim)
  return mtf.cumsum(routed, group_dim, exclusive=True)


def _exclusive_scan(x: mtf.Tensor, dim: mtf.Dimension) -> mtf.Tensor:
  """Exclusive cumulative sum along an unsplit dim; no gradient needed."""
  axis = x.shape.dims.index(dim)
  return mtf.slicewise(
      lambda t: tf.math.cumsum(t, axis=axis, exclusive=True), [x],
      splittable_dims=[d for d in x.shape.dims if d != dim],
      grad_function=0, name="exclusive_scan")


def load_balancing(expert_one_hot: mtf.Tensor, router_probs: mtf.Tensor,
                   nonpadding: mtf.Tensor, group_dim: mtf.Dimension,
                   experts_dim: mtf.Dimension) -> mtf.Tensor:
  """E * sum_e f_e * P_e per group, averaged over groups (paper Eq. 4-6).

  Matches Mesh TF bit for bit in meaning, including its padding nuance
  (reference §1.6): f and P average over every position of the group,
  padding included, and each group's term is then scaled by the group's
  fraction of real tokens. f uses the chosen expert before capacity
  dropping. A one-hot with an extra dim (NTLB's top-k choices) gives the
  mean of the loss over those choices, as Mesh TF's ntlb computes it.
  """
  fraction_routed = mtf.reduce_mean(expert_one_hot, reduced_dim=group_dim)
  mean_probability = mtf.reduce_mean(router_probs, reduced_dim=group_dim)
  per_group = mtf.reduce_sum(fraction_routed * mean_probability,
                             reduced_dim=experts_dim) * float(experts_dim.size)
  real_fraction = mtf.reduce_mean(nonpadding, reduced_dim=group_dim)
  return mtf.reduce_mean(per_group * real_fraction)


def router_z_loss(logits: mtf.Tensor, nonpadding: mtf.Tensor,
                  experts_dim: mtf.Dimension) -> mtf.Tensor:
  """Mean over real tokens of logsumexp(logits)^2 (ST-MoE, Zoph et al.)."""
  log_z = mtf.reduce_logsumexp(logits, experts_dim)
  return (mtf.reduce_sum(mtf.square(log_z) * nonpadding)
          / mtf.maximum(mtf.reduce_sum(nonpadding), 1.0))
