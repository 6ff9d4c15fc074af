"""The Switch router: which expert each token goes to, and with what weight.

Top-1 routing as in the paper (Fedus et al. 2022, §2.1-2.2) and Mesh TF's
`switch` gating: a float32 softmax router ("selective precision", §2.4),
optional exploration noise on the router input only, the un-renormalised top-1
probability as the gate, capacity enforced by token order within the group,
and the load-balancing loss computed per group. The result is a small typed
record so that dispatch, experts and metrics never reach into router
internals.
"""

import dataclasses
from typing import Optional

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

INPUT_JITTER = "input_jitter"
INPUT_DROPOUT = "input_dropout"
ARGMAX = "argmax"
POLICIES = (INPUT_JITTER, INPUT_DROPOUT, ARGMAX)

# Router precision: float32 is the paper's selective precision (§2.4);
# bfloat16 is the unstable ablation of its Table 2.
ROUTER_DTYPES = {"float32": tf.float32, "bfloat16": tf.bfloat16}

# How token positions within their expert are counted; both are exact.
CUMSUM_MATMUL = "matmul"  # mtf.cumsum: an [S, S] triangular einsum (TPU)
CUMSUM_SCAN = "scan"  # tf.math.cumsum per slice: O(S) instead of O(S^2)


@dataclasses.dataclass(frozen=True)
class Routing:
  """Routing decisions for tokens laid out as [outer_batch, groups, group].

  Every per-token field has shape [O, G, S] and dtype float32 unless noted.
  """
  expert_index: mtf.Tensor  # int32, argmax expert (before capacity).
  position_in_expert: mtf.Tensor  # slot in that expert; valid where kept.
  kept: mtf.Tensor  # 1.0 = dispatched; 0.0 = padding or overflow.
  gate: mtf.Tensor  # top-1 probability where kept, else 0.
  top1_probability: mtf.Tensor  # top-1 probability of every token.
  nonpadding: mtf.Tensor  # 1.0 = real token.
  router_probs: mtf.Tensor  # [O, G, S, experts] softmax over experts.
  experts_dim: mtf.Dimension  # unsplit experts dimension of router_probs.
  capacity_dim: mtf.Dimension  # slots per expert per group.
  load_balancing_loss: mtf.Tensor  # scalar, before loss_coef/microbatches.
  router_z_loss: Optional[mtf.Tensor]  # scalar mean logsumexp^2, if asked.


def check_policy(policy: str, knob: str) -> str:
  """Returns `policy` or raises a ValueError naming the knob and choices."""
  if policy not in POLICIES:
    raise ValueError(
        "Switch.%s=%r is not a known router policy; use one of %s "
        "(the paper uses %r for training and %r for evaluation)."
        % (knob, policy, ", ".join(POLICIES), INPUT_JITTER, ARGMAX))
  return policy


def check_router_dtype(name: str) -> tf.DType:
  """Returns the tf dtype for `name` or raises a ValueError naming choices."""
  if name not in ROUTER_DTYPES:
    raise ValueError(
        "Switch.router_dtype=%r is not supported; use %s (the paper's "
        "selective precision is \"float32\")."
        % (name, " or ".join('"%s"' % k for k in ROUTER_DTYPES)))
  return ROUTER_DTYPES[name]


def route(inputs: mtf.Tensor,
          nonpadding: mtf.Tensor,
          experts_dim: mtf.Dimension,
          capacity_dim: mtf.Dimension,
          policy: str,
          train: bool,
          variable_dtype: mtf.VariableDType,
          jitter_eps: float = 1e-2,
          dropout_rate: float = 0.1,
          compute_z_loss: bool = False,
          cumsum: str = CUMSUM_MATMUL,
          router_dtype: tf.DType = tf.float32,
          name: str = "switch_gating") -> Routing:
  """Routes grouped tokens to experts.

  Args:
    inputs: [O, G, S, d_model] tokens in the activation dtype.
    nonpadding: [O, G, S] float32, 1.0 for real tokens and 0.0 for padding.
    experts_dim: the experts dimension, not split on the mesh (the router is
      replicated, as in Mesh TF).
    capacity_dim: slots per expert per group.
    policy: one of POLICIES; the noise is applied in training only.
    train: whether this is a training step.
    variable_dtype: the model's variable dtype; the router kernel is read in
      float32 whatever the activation dtype.
    jitter_eps: eps of the multiplicative Uniform(1-eps, 1+eps) jitter.
    dropout_rate: router-input dropout rate of the input_dropout policy.
    compute_z_loss: also return the ST-MoE router z-loss.
    cumsum: CUMSUM_MATMUL or CUMSUM_SCAN, how positions are counted.
    router_dtype: dtype of the router input, kernel, logits and softmax;
      float32 (selective precision) or bfloat16 (the Table 2 ablation). The
      masks, positions and losses downstream are float32 either way.
    name: variable scope of the router kernel (Mesh TF: "switch_gating").

  Returns:
    a Routing record.
  """
  check_policy(policy, "router_policy")
  group_dim = inputs.shape.dims[-2]
  # Selective precision (paper §2.4): everything from the router matmul to
  # the masks runs in float32 (unless the bfloat16 ablation asks otherwise);
  # experts still get the un-noised inputs.
  router_inputs = mtf.cast(inputs, router_dtype)
  if train and policy == INPUT_JITTER:
    router_inputs = mtf.layers.multiplicative_jitter(router_inputs, jitter_eps)
  elif policy == INPUT_DROPOUT:
    router_inputs = mtf.dropout(router_inputs, is_training=train,
                                keep_prob=1.0 - dropout_rate)
  router_variable_dtype = mtf.VariableDType(
      variable_dtype.master_dtype, variable_dtype.slice_dtype, router_dtype)
  logits = mtf.layers.dense(router_inputs, experts_dim, use_bias=False,
                            variable_dtype=router_variable_dtype, name=name)
  router_probs = mtf.to_float(mtf.softmax(logits, reduced_dim=experts_dim))
  logits = mtf.to_float(logits)
  top1_probability, expert_index = mtf.top_1(router_probs,
                                             reduced_dim=experts_dim)
  expert_one_hot = mtf.one_hot(expert_index, experts_dim, dtype=tf.float32)

  load_balancing_loss = _load_balancing_loss(
      expert_one_hot, router_probs, nonpadding, group_dim, experts_dim)

  # Slots go by token order within the group (no probability priority);
  # padding takes no slot and overflow tokens are dropped.
  routed = expert_one_hot * nonpadding
  if cumsum == CUMSUM_SCAN:
    tokens_before = _exclusive_scan(routed, group_dim)
  else:
    tokens_before = mtf.cumsum(routed, group_dim, exclusive=True)
  position_in_expert = mtf.reduce_sum(tokens_before * routed,
                                      reduced_dim=experts_dim)
  kept = nonpadding * mtf.to_float(
      mtf.less(position_in_expert, float(capacity_dim.size)))

  router_z_loss = None
  if compute_z_loss:
    router_z_loss = _router_z_loss(logits, nonpadding, experts_dim)

  return Routing(
      expert_index=expert_index,
      position_in_expert=position_in_expert,
      kept=kept,
      gate=top1_probability * kept,
      top1_probability=top1_probability,
      nonpadding=nonpadding,
      router_probs=router_probs,
      experts_dim=experts_dim,
      capacity_dim=capacity_dim,
      load_balancing_loss=load_balancing_loss,
      router_z_loss=router_z_loss)


def _exclusive_scan(x: mtf.Tensor, dim: mtf.Dimension) -> mtf.Tensor:
  """Exclusive cumulative sum along an unsplit dim; no gradient needed."""
  axis = x.shape.dims.index(dim)
  return mtf.slicewise(
      lambda t: tf.math.cumsum(t, axis=axis, exclusive=True), [x],
      splittable_dims=[d for d in x.shape.dims if d != dim],
      grad_function=0, name="exclusive_scan")


def _load_balancing_loss(expert_one_hot: mtf.Tensor, router_probs: mtf.Tensor,
                         nonpadding: mtf.Tensor, group_dim: mtf.Dimension,
                         experts_dim: mtf.Dimension) -> mtf.Tensor:
  """E * sum_e f_e * P_e per group, averaged over groups (paper Eq. 4-6).

  Matches Mesh TF bit for bit in meaning, including its padding nuance
  (reference §1.6): f and P average over every position of the group,
  padding included, and each group's term is then scaled by the group's
  fraction of real tokens. f uses the argmax before capacity dropping.
  """
  fraction_routed = mtf.reduce_mean(expert_one_hot, reduced_dim=group_dim)
  mean_probability = mtf.reduce_mean(router_probs, reduced_dim=group_dim)
  per_group = mtf.reduce_sum(fraction_routed * mean_probability,
                             reduced_dim=experts_dim) * float(experts_dim.size)
  real_fraction = mtf.reduce_mean(nonpadding, reduced_dim=group_dim)
  return mtf.reduce_mean(per_group * real_fraction)


def _router_z_loss(logits: mtf.Tensor, nonpadding: mtf.Tensor,
                   experts_dim: mtf.Dimension) -> mtf.Tensor:
  """Mean over real tokens of logsumexp(logits)^2 (ST-MoE, Zoph et al.)."""
  log_z = mtf.reduce_logsumexp(logits, experts_dim)
  return (mtf.reduce_sum(mtf.square(log_z) * nonpadding)
          / mtf.maximum(mtf.reduce_sum(nonpadding), 1.0))
