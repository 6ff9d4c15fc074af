"""The experts: one feed-forward network per expert, where the experts live.

Expert slots arrive split like the batch (groups on the data axis). Renaming
the expert dimension from `expert_unsplit` to `experts` and the groups from
`batch` to `batch_unsplit` moves the mesh split from groups to experts, which
Mesh TF lowers as an all-to-all: each device then runs only its own experts
(expert parallelism, paper §5.4). The output takes the same trip back. The
intermediate `d_model_split` hop lets model-parallel meshes all-to-all only
their share of d_model (layout rule `d_model_split:model`); without such a
rule it is a no-op. Weights: [experts, d_model, expert_hidden] and
[experts, expert_hidden, d_model], named `wi` (`wi_0`, `wi_1` for GEGLU) and
`wo` like Mesh TF's MoE1D, initialised by mtf's VarianceScalingInitializer
(gin: `VarianceScalingInitializer.scale = 0.1` is the paper's init).
"""

import functools
from typing import List, Optional, Sequence, Tuple, Union

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

from switch_mtf.layer import expert_matmul

EXPERTS = "experts"
EXPERT_HIDDEN = "expert_hidden"
D_MODEL_SPLIT = "d_model_split"
OUTPUT = "wo"  # the FFN's output kernel

# Activation name -> mtf.layers.dense_product activation functions.
ACTIVATIONS = {
    "relu": "relu",
    "gelu": "gelu",
    "geglu": ["gelu", "linear"],  # gated GELU: wi_0 (gelu) * wi_1 (linear)
}


def check_activation(activation: str) -> str:
  """Returns `activation` or raises a ValueError naming the choices."""
  if activation not in ACTIVATIONS:
    raise ValueError(
        "Switch.activation=%r is not supported; use one of %s (the released "
        "Switch checkpoints use 'relu', T5.1.1-style models 'geglu')."
        % (activation, ", ".join(sorted(ACTIVATIONS))))
  return activation


def run_experts(expert_inputs: mtf.Tensor,
                hidden_size: int,
                activation: str,
                dropout_rate: float,
                train: bool,
                variable_dtype: mtf.VariableDType,
                outputs: Sequence[Tuple[str, mtf.Dimension]]
                ) -> List[mtf.Tensor]:
  """Applies each expert's FFN to its slots, with one or more outputs.

  Args:
    expert_inputs: [O, experts_unsplit, G, C, d_model], groups split like
      the batch (as produced by dispatch.py).
    hidden_size: expert_hidden, the FFN width of each expert.
    activation: a key of ACTIVATIONS.
    dropout_rate: expert dropout on the hidden activation (paper §2.4
      fine-tuning: 0.4 in experts vs 0.1 elsewhere).
    train: whether this is a training step (dropout is off otherwise).
    variable_dtype: the model's variable dtype.
    outputs: (kernel name, output dim) per output projection of the shared
      hidden layer: [(OUTPUT, d_model)] for the FFN; Mesh TF's experts in
      attention use [("q_wo", q), ("k_wo", kv)].

  Returns:
    per output, [O, experts_unsplit, G, C, its dim], laid out like
    expert_inputs.
  """
  activation_functions: Union[str, List[str]] = ACTIVATIONS[
      check_activation(activation)]
  outer_dim, experts_unsplit_dim, groups_dim, capacity_dim, model_dim = (
      expert_inputs.shape.dims)
  experts_dim = mtf.Dimension(EXPERTS, experts_unsplit_dim.size)
  groups_unsplit_dim = mtf.Dimension("batch_unsplit", groups_dim.size)
  hidden_dim = mtf.Dimension(EXPERT_HIDDEN, hidden_size)
  split_model_dim = mtf.Dimension(D_MODEL_SPLIT, model_dim.size)

  x = _relayout(expert_inputs, [outer_dim, experts_dim, groups_unsplit_dim,
                                capacity_dim], model_dim, split_model_dim)
  # A leading size-1 outer_batch dim (every mesh but TPU's outer batch)
  # leaves [experts, ...] operands, which expert_matmul multiplies with
  # tf.matmul forward and backward; otherwise Mesh TF's einsum layers.
  slot_dims = [outer_dim, experts_unsplit_dim, groups_dim, capacity_dim]
  results = []
  if outer_dim.size == 1:
    x = mtf.reshape(x, mtf.Shape(x.shape.dims[1:]))
    h = _expert_dense_product(
        x, hidden_dim, (activation_functions
                        if isinstance(activation_functions, list)
                        else [activation_functions]), variable_dtype, "wi")
    if dropout_rate:
      h = mtf.dropout(h, is_training=train, keep_prob=1.0 - dropout_rate)
    for name, output_dim in outputs:
      y = _expert_dense_product(h, output_dim, [None], variable_dtype, name)
      results.append(mtf.reshape(y, mtf.Shape([outer_dim] + y.shape.dims)))
  else:
    h = mtf.layers.dense_product(
        x, reduced_dims=[model_dim], new_dims=[hidden_dim],
        expert_dims=[experts_dim], activation_functions=activation_functions,
        use_bias=False, variable_dtype=variable_dtype, name="wi")
    if dropout_rate:
      h = mtf.dropout(h, is_training=train, keep_prob=1.0 - dropout_rate)
    for name, output_dim in outputs:
      results.append(mtf.layers.dense(
          h, output_dim, reduced_dims=[hidden_dim], expert_dims=[experts_dim],
          use_bias=False, variable_dtype=variable_dtype, name=name))
  return [_relayout(y, slot_dims, dim, mtf.Dimension(D_MODEL_SPLIT, dim.size))
          for y, (_, dim) in zip(results, outputs)]


def _expert_dense_product(x: mtf.Tensor, new_dim: mtf.Dimension,
                          activation_functions: List[Optional[str]],
                          variable_dtype: mtf.VariableDType,
                          name: str) -> mtf.Tensor:
  """mtf.layers.dense_product without bias for [experts, ..., d_in] inputs.

  The same kernels (names, shapes, initializer, unit scaling) as Mesh TF's
  layer, multiplied by expert_matmul instead of mtf.einsum.
  """
  experts_dim, reduced_dim = x.shape.dims[0], x.shape.dims[-1]
  output_shape = mtf.Shape(x.shape.dims[:-1] + [new_dim])
  factors = []
  for i, activation in enumerate(activation_functions):
    scope = "%s_%d" % (name, i) if len(activation_functions) > 1 else name
    kernel = mtf.layers.get_dense_kernel_weights(
        x, [new_dim], [reduced_dim], [experts_dim], kernel_initializer=None,
        name=scope, variable_dtype=variable_dtype)
    with tf.variable_scope(scope):
      y = expert_matmul.expert_matmul(x, kernel, output_shape)
    if mtf.layers.unit_scaling_convention():
      y *= reduced_dim.size ** -0.5
    if activation == "relu":
      y = relu(y)
    elif activation not in (None, "linear"):
      y = getattr(mtf, activation)(y)
    factors.append(y)
  return functools.reduce(mtf.multiply, factors)


def relu(x: mtf.Tensor) -> mtf.Tensor:
  """mtf.relu, differentiated by TensorFlow's fused ReluGrad.

  Mesh TF's relu gradient is dy * cast(x > 0): three elementwise passes
  (Greater, Cast, Mul) over the [experts, slots, hidden] activation, where
  ReluGrad makes one and gives the same numbers. On CPU those passes were a
  tenth of an 8-expert layer's op time (docs/results.md, profile).
  """
  return mtf.cwise(tf.nn.relu, [x], name="relu", grad_function=_relu_grad)


def _relu_grad(op: mtf.Operation, dy: mtf.Tensor) -> List[mtf.Tensor]:
  return [mtf.slicewise(
      lambda g, y: tf.raw_ops.ReluGrad(gradients=g, features=y),
      [dy, op.outputs[0]], output_shape=dy.shape, output_dtype=dy.dtype,
      splittable_dims=dy.shape.dims, name="relu_grad")]


def _relayout(x: mtf.Tensor, leading_dims: List[mtf.Dimension],
              model_dim: mtf.Dimension,
              split_model_dim: mtf.Dimension) -> mtf.Tensor:
  """Reshapes x to leading_dims + [d_model] through the d_model_split hop."""
  x = mtf.reshape(x, mtf.Shape(leading_dims + [split_model_dim]))
  return mtf.reshape(x, mtf.Shape(leading_dims + [model_dim]))
