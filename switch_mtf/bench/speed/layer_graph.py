"""One feed-forward layer as a training graph, ready to time.

Every contender (our Switch in each dispatch mode, Mesh TF's MoE1D with
switch or top-2 gating, the dense DenseReluDense) is called exactly as a
Transformer calls it (LayerStack -> sublayer -> scope named after the class)
on a one-device placement mesh, in its own tf.Graph and Session, so that one
process can hold several and time them round-robin. One step = forward,
backward and an SGD update of loss = sum(y * T) / tokens + aux loss, with T a
fixed random tensor (the anchor's Method A). The update is TensorFlow's fused
ApplyGradientDescent on each weight slice (read weight and gradient, write
weight: what flops.train_bytes counts), not Mesh TF's SgdOptimizer, whose
assign_sub writes two temporaries of every weight; at 128 experts those cost
more than the layer's own matmuls, and they would be billed to the layer.
"""

import dataclasses
from typing import Any, Dict

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
from mesh_tensorflow.transformer import moe
from mesh_tensorflow.transformer import transformer
from mesh_tensorflow.transformer import transformer_layers
import numpy as np
import tensorflow.compat.v1 as tf
from tensorflow.python.ops import resource_variable_ops
from tensorflow.python.training import gen_training_ops

from switch_mtf.layer import capacity
from switch_mtf.layer import standalone
from switch_mtf.layer import switch as switch_layer

DENSE = "dense"
SWITCH_EINSUM = "switch_einsum"
SWITCH_GATHER = "switch_gather"
MOE1D_SWITCH = "moe1d_switch"
MOE1D_TOP2 = "moe1d_top2"
KINDS = (DENSE, SWITCH_EINSUM, SWITCH_GATHER, MOE1D_SWITCH, MOE1D_TOP2)
# Expert FFNs each token runs through.
EXPERTS_PER_TOKEN = {DENSE: 1, SWITCH_EINSUM: 1, SWITCH_GATHER: 1,
                     MOE1D_SWITCH: 1, MOE1D_TOP2: 2}
SGD_LEARNING_RATE = 1e-6


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """What to build: a layer kind at one size and routing setting."""
  kind: str
  batch: int = 32
  length: int = 128
  d_model: int = 256
  hidden: int = 1024  # dense d_ff = expert hidden size (FLOP-matched)
  num_experts: int = 8
  capacity_factor: float = 1.0
  group_size: int = 1024
  dtype: str = "float32"  # activation dtype

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError("unknown layer kind %r; use one of %s"
                       % (self.kind, ", ".join(KINDS)))

  @property
  def tokens(self) -> int:
    return self.batch * self.length

  @property
  def is_moe(self) -> bool:
    return self.kind != DENSE

  def groups_and_capacity(self) -> Dict[str, int]:
    """Group count, group size and expert capacity the layer will use."""
    if not self.is_moe:
      return {}
    num_groups, group = capacity.split_into_groups(self.tokens,
                                                   self.group_size, 1)
    # Top-2 MoE1D uses the same formula: both choices share these slots.
    cap = capacity.expert_capacity(group, self.num_experts,
                                   self.capacity_factor, 4)
    return {"num_groups": num_groups, "group_size": group, "capacity": cap}

  def as_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def make_layer(spec: LayerSpec) -> transformer.TransformerLayer:
  """The layer object of `spec.kind`, with no dropout and paper defaults."""
  if spec.kind == DENSE:
    return transformer_layers.DenseReluDense(hidden_size=spec.hidden,
                                             dropout_rate=0.0)
  if spec.kind in (SWITCH_EINSUM, SWITCH_GATHER):
    return switch_layer.Switch(
        num_experts=spec.num_experts, hidden_size=spec.hidden,
        group_size=spec.group_size,
        capacity_factor_train=spec.capacity_factor,
        dispatch_mode="einsum" if spec.kind == SWITCH_EINSUM else "gather")
  return moe.MoE1D(
      num_experts=spec.num_experts, hidden_size=spec.hidden,
      group_size=spec.group_size,
      capacity_factor_train=spec.capacity_factor,
      moe_gating="switch" if spec.kind == MOE1D_SWITCH else "top_2")


class BuiltLayer:
  """A lowered training step of one layer, with its own graph and session."""

  def __init__(self, spec: LayerSpec, threads: int = 0, seed: int = 0,
               learning_rate: float = SGD_LEARNING_RATE):
    self.spec = spec
    self.graph = tf.Graph()
    with self.graph.as_default():
      tf.set_random_seed(seed)
      self.train_op, self.loss, copy_to_slices, self.params = _build(
          spec, seed, learning_rate)
      init = [tf.global_variables_initializer(),
              tf.local_variables_initializer()]
      self.session = tf.Session(graph=self.graph, config=session_config(
          threads))
      self.session.run(init)
      self.session.run(copy_to_slices)

  def step(self) -> float:
    """One forward+backward+update; returns the loss."""
    return float(self.session.run([self.train_op, self.loss])[1])

  def forward(self) -> float:
    return float(self.session.run(self.loss))

  def close(self) -> None:
    self.session.close()


def session_config(threads: int = 0) -> tf.ConfigProto:
  """0 = TensorFlow's default thread pools (all cores)."""
  return tf.ConfigProto(intra_op_parallelism_threads=threads,
                        inter_op_parallelism_threads=threads)


def _sgd_assign_fn(learning_rate: float):
  """An mtf.assign function: slice -= learning_rate * grad, in one pass."""
  def assign_fn(variable: mtf.Variable, slice_var: tf.Variable,
                grad: tf.Tensor) -> tf.Operation:
    dtype = variable.slice_dtype
    alpha, delta = tf.constant(learning_rate, dtype), tf.cast(grad, dtype)
    if isinstance(slice_var, resource_variable_ops.BaseResourceVariable):
      return gen_training_ops.resource_apply_gradient_descent(
          slice_var.handle, alpha, delta)
    return gen_training_ops.apply_gradient_descent(slice_var, alpha,
                                                   delta).op
  return assign_fn


def _build(spec: LayerSpec, seed: int, learning_rate: float):
  graph = mtf.Graph()
  mesh = mtf.Mesh(graph, "bench_mesh")
  batch_dim = mtf.Dimension("batch", spec.batch)
  length_dim = mtf.Dimension("length", spec.length)
  model_dim = mtf.Dimension("d_model", spec.d_model)
  shape = mtf.Shape([batch_dim, length_dim, model_dim])
  rng = np.random.RandomState(seed)
  dtype = tf.as_dtype(spec.dtype)
  x = mtf.import_fully_replicated(
      mesh, tf.constant(rng.randn(*shape.to_integer_list), tf.float32), shape)
  target = mtf.import_fully_replicated(
      mesh, tf.constant(rng.randn(*shape.to_integer_list), tf.float32), shape)
  x = mtf.cast(x, dtype)
  # All tokens real. MoE1D's switch gating needs the nonpadding mask the
  # Transformer always provides (it crashes on None, reference §1.8).
  sequence_id = mtf.ones(mesh, mtf.Shape([batch_dim, length_dim]), tf.int32)
  losses = []
  context = transformer.Context(
      model=standalone.StandInModel(layout="", mesh_shape="",
                                       model_dim=model_dim),
      mesh=mesh, batch_dims=[batch_dim], length_dim=length_dim,
      variable_dtype=mtf.VariableDType(tf.float32, tf.float32, dtype),
      mode=tf.estimator.ModeKeys.TRAIN, sequence_id=sequence_id,
      losses=losses)
  layer = make_layer(spec)
  layer.set_name("layer_000")
  stack = transformer.LayerStack(
      [layer], sublayers_initial=[],
      sublayers_per_layer=[transformer.sublayer_call_layer],
      sublayers_final=[])
  with tf.variable_scope("encoder"):
    y = stack.call(context, x)
  loss = mtf.reduce_sum(mtf.cast(y, tf.float32) * target) / float(spec.tokens)
  for aux in losses:
    loss += mtf.cast(aux, tf.float32)
  variables = graph.trainable_variables
  grads = mtf.gradients([loss], [v.outputs[0] for v in variables])
  assign_fn = _sgd_assign_fn(learning_rate)
  updates = [mtf.assign(variable, grad, assign_fn=assign_fn)
             for grad, variable in zip(grads, variables) if grad is not None]
  mesh_impl = placement_mesh_impl.PlacementMeshImpl(
      shape=mtf.Shape([]), layout=mtf.LayoutRules([]), devices=[""])
  lowering = mtf.Lowering(graph, {mesh: mesh_impl}, autostack=False)
  tf_loss = lowering.export_to_tf_tensor(loss)
  train_op = tf.group([lowering.lowered_operation(op) for op in updates])
  params = sum(v.size for v in variables)
  return train_op, tf_loss, lowering.copy_masters_to_slices(), params
