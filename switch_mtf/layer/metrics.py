"""Router metrics in the TensorBoard summaries of a training run, anywhere.

Mesh TF's MoE summaries (`mtf.scalar_summary`) are only written by the TPU
host_call (`tpu_summaries=True`); on CPU/GPU meshes they vanish (reference
§1.8). Here one small mtf Operation carries a layer's metrics to lowering:

- placement meshes (CPU/GPU): each value becomes a `tf.summary` scalar in the
  default SUMMARIES collection, which the Estimator's SummarySaverHook writes
  with every other training summary;
- TPU (SIMD) meshes: values go to Mesh TF's own scalar-summary collection,
  which its host_call writes when `tpu_summaries = True`.

With microbatching, the layer runs inside the serialized step's tf.while_loop
and TensorFlow cannot summarise a value from inside the loop. Each metric is
then averaged over the step's microbatches into a local variable, and the
summary reads that variable before the next step's loop overwrites it: the
value written at step s is the mean over the microbatches of step s - 1 (the
very first summary of a run, which has no finished step yet, is skipped).

Tag names are `switch/<layer scope>/<metric>`, e.g.
`switch/encoder/block_000/layer_003/tokens_dropped_fraction`.
"""

import math
from typing import Dict, List, Tuple

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
from mesh_tensorflow import utils as mtf_utils
import tensorflow.compat.v1 as tf

from switch_mtf.layer import dispatch
from switch_mtf.layer import expert_choice
from switch_mtf.layer import router as router_lib

TAG_ROOT = "switch"


def router_metrics(routing: dispatch.AnyRouting) -> Dict[str, mtf.Tensor]:
  """Float32 metrics of one layer's routing, averaged over real tokens.

  Keys: load_balancing_loss (before loss_coef; 1.0 = perfectly balanced),
  tokens_dropped_fraction (real tokens that no expert processes),
  router_entropy (nats) and router_z_loss when the router computed it.
  Tokens choosing experts add expert_fraction (vector: share of real tokens
  whose first choice is each expert, before capacity) and
  top1_probability_mean; NTLB adds ntlb_routed_fraction/pass_<p> (share of
  real tokens dispatched to their p-th choice: p >= 2 were rerouted).
  Experts choosing tokens add experts_per_token_mean; their entropy is that
  of each expert's distribution over the group's tokens.
  """
  if isinstance(routing, expert_choice.ExpertChoiceRouting):
    metrics = _expert_choice_metrics(routing)
  else:
    metrics = _token_choice_metrics(routing)
  metrics["load_balancing_loss"] = routing.load_balancing_loss
  if routing.router_z_loss is not None:
    metrics["router_z_loss"] = routing.router_z_loss
  return metrics


def _entropy(probs: mtf.Tensor, dim: mtf.Dimension) -> mtf.Tensor:
  return -mtf.reduce_sum(probs * mtf.log(mtf.maximum(probs, 1e-30)),
                         reduced_dim=dim)


def _token_choice_metrics(routing: router_lib.Routing
                          ) -> Dict[str, mtf.Tensor]:
  real = routing.nonpadding
  num_real = mtf.maximum(mtf.reduce_sum(real), 1.0)
  experts_dim = routing.experts_dim
  chosen = mtf.one_hot(routing.first_choice, experts_dim, dtype=tf.float32)
  entropy = _entropy(routing.router_probs, experts_dim)
  metrics = {
      "tokens_dropped_fraction":
          1.0 - mtf.reduce_sum(routing.kept) / num_real,
      "expert_fraction":
          mtf.reduce_sum(chosen * real, output_shape=[experts_dim])
          / num_real,
      "router_entropy": mtf.reduce_sum(entropy * real) / num_real,
      "top1_probability_mean":
          mtf.reduce_sum(routing.top1_probability * real) / num_real,
  }
  for number, kept in enumerate(routing.kept_by_pass, start=1):
    metrics["ntlb_routed_fraction/pass_%d" % number] = (
        mtf.reduce_sum(kept) / num_real)
  return metrics


def _expert_choice_metrics(routing: expert_choice.ExpertChoiceRouting
                           ) -> Dict[str, mtf.Tensor]:
  real = routing.nonpadding
  num_real = mtf.maximum(mtf.reduce_sum(real), 1.0)
  picked = mtf.to_float(mtf.greater(routing.experts_per_token, 0.0))
  return {
      "tokens_dropped_fraction":
          1.0 - mtf.reduce_sum(picked * real) / num_real,
      "experts_per_token_mean":
          mtf.reduce_sum(routing.experts_per_token * real) / num_real,
      "router_entropy": mtf.reduce_mean(
          _entropy(routing.token_probs, routing.group_dim)),
  }


def layer_tag_prefix(layer_scope: str) -> str:
  """`encoder/block_000/layer_003` -> `switch/encoder/block_000/layer_003`."""
  return "%s/%s" % (TAG_ROOT, layer_scope) if layer_scope else TAG_ROOT


def write_metrics(passthrough: mtf.Tensor, metrics: Dict[str, mtf.Tensor],
                  tag_prefix: str, num_microbatches: int = 1) -> mtf.Tensor:
  """Schedules `metrics` for TensorBoard; returns `passthrough` unchanged.

  Args:
    passthrough: a tensor the training step always computes (the layer's aux
      loss); the summaries ride on it so they run inside microbatch loops.
    metrics: name -> float32 scalar, or 1-D over the unsplit experts
      dimension (one summary per expert, `<name>/expert_<index>`).
    tag_prefix: e.g. layer_tag_prefix(scope).
    num_microbatches: context.num_microbatches of the training step.

  Returns:
    a tensor equal to `passthrough`; use it in place of `passthrough`.
  """
  return _WriteMetricsOperation(passthrough, metrics, tag_prefix,
                                num_microbatches or 1).outputs[0]


class _WriteMetricsOperation(mtf.Operation):
  """Identity on its first input; exports the other inputs as summaries."""

  def __init__(self, passthrough, metrics, tag_prefix, num_microbatches):
    names = sorted(metrics)
    for name in names:
      if metrics[name].shape.ndims > 1:
        raise ValueError("Router metric %r must be a scalar or 1-D, got %s."
                         % (name, metrics[name].shape))
    super().__init__([passthrough] + [metrics[n] for n in names],
                     name="switch_router_metrics")
    self._names = names
    self._tag_prefix = tag_prefix
    self._num_microbatches = num_microbatches
    self._outputs = [mtf.Tensor(self, passthrough.shape, passthrough.dtype)]

  def gradient(self, grad_ys):
    return [grad_ys[0]] + [None] * len(self._names)

  def lower(self, lowering):
    mesh_impl = lowering.mesh_impl(self)
    scalars = self._lowered_scalars(lowering, mesh_impl)
    passthrough = lowering.tensors[self.inputs[0]]
    if not isinstance(mesh_impl, placement_mesh_impl.PlacementMeshImpl):
      for tag, value in scalars:
        tf.add_to_collection(mtf_utils.SCALAR_SUMMARIES_COLLECTION_KEY,
                             (tag, value))
    elif self._num_microbatches > 1:
      updates = _average_into_previous_step_summaries(
          scalars, self._num_microbatches)

      def after_updates(x):
        with tf.control_dependencies(updates):
          return tf.identity(x)
      passthrough = mesh_impl.slicewise(after_updates, passthrough)
    else:
      for tag, value in scalars:
        _add_summary(tag, value)
    lowering.set_tensor_lowering(self.outputs[0], passthrough)

  def _lowered_scalars(self, lowering, mesh_impl) -> List[Tuple[str, tf.Tensor]]:
    """(tag, float32 tf scalar) pairs, one per scalar or vector element."""
    scalars = []
    for name, tensor in zip(self._names, self.inputs[1:]):
      if not mesh_impl.tensor_layout(tensor).is_fully_replicated:
        raise ValueError(
            "Router metric %r has a dimension split on the mesh (%s); "
            "metrics must be reduced to replicated values." % (name, tensor))
      value = tf.cast(
          lowering.tensors[tensor].to_laid_out_tensor().tensor_list[0],
          tf.float32)
      tag = "%s/%s" % (self._tag_prefix, name)
      if tensor.shape.ndims == 0:
        scalars.append((tag, value))
      else:
        num_experts = tensor.shape.dims[0].size
        for index, element in enumerate(tf.unstack(value, num=num_experts)):
          scalars.append(("%s/expert_%03d" % (tag, index), element))
    return scalars


def _add_summary(tag: str, value: tf.Tensor) -> None:
  """Adds a scalar summary with exactly `tag` (no name-scope prefix)."""
  tf.add_to_collection(tf.GraphKeys.SUMMARIES,
                       tf.raw_ops.ScalarSummary(tags=tag, values=value))


def _average_into_previous_step_summaries(
    scalars: List[Tuple[str, tf.Tensor]], num_microbatches: int):
  """Accumulates a step's microbatch means; summarises the previous step's.

  Runs inside the microbatch while-loop. Per metric, outside the loop: read
  the accumulator (the finished previous step; NaN before any step, which
  writes no summary), then reset it; inside: add value / num_microbatches
  after the reset. Returns the in-loop update ops.
  """
  updates = []
  for tag, value in scalars:
    with tf.init_scope():  # Outside the loop: once per step, not per batch.
      # A resource variable: its read is a snapshot that the reset below
      # cannot overwrite (a ref variable's read aliases the buffer).
      accumulator = tf.Variable(
          math.nan, trainable=False, dtype=tf.float32,
          collections=[tf.GraphKeys.LOCAL_VARIABLES], use_resource=True,
          name="switch_metric_accumulator")
      previous_step = accumulator.read_value()
      summary = tf.raw_ops.ScalarSummary(tags=tag, values=previous_step)
      tf.add_to_collection(
          tf.GraphKeys.SUMMARIES,
          tf.where(tf.math.is_nan(previous_step), "", summary))
      with tf.control_dependencies([previous_step]):
        reset = accumulator.assign(0.0)
    with tf.control_dependencies([reset]):
      updates.append(
          accumulator.assign_add(value / float(num_microbatches)).op)
  return updates
