"""Expert matmuls lowered to batched tf.matmul, in the forward and backward.

`mtf.einsum` lowers each expert FFN product to `tf.einsum`, and its gradient
to two more einsums. On CPU the weight-gradient einsum (each expert's slot
tokens contracted away) runs far below the matmul peak once the experts hold
few slots each: it was most of the gap between a 128-expert Switch block and
its roofline (docs/results.md). The same three products written as
`tf.matmul` with its transpose flags read both operands in place: this
operation does that, with mtf's semantics otherwise (slicewise over the mesh,
a sum over mesh axes that split a contracted dimension).

Operands are [experts, rows..., cols] with the experts dimension first;
every dimension between the first and the last is flattened into the rows
of a batch of matrices, one per expert.
"""

from typing import List, Optional

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf


def _matrix_dims(x: mtf.Tensor, transpose: bool):
  """(row dims, col dims) of x as a batch of matrices, after `transpose`."""
  rows, cols = x.shape.dims[1:-1], x.shape.dims[-1:]
  return (cols, rows) if transpose else (rows, cols)


class ExpertMatmulOperation(mtf.Operation):
  """y[e] = op(a[e]) @ op(b[e]) for every expert e; op = transpose or not."""

  def __init__(self, a: mtf.Tensor, b: mtf.Tensor, output_shape: mtf.Shape,
               transpose_a: bool = False, transpose_b: bool = False,
               name: Optional[str] = None):
    super().__init__([a, b], name=name or "expert_matmul")
    if a.dtype != b.dtype:
      raise ValueError("expert_matmul needs equal dtypes, got %s and %s"
                       % (a.dtype, b.dtype))
    a_rows, a_cols = _matrix_dims(a, transpose_a)
    b_rows, b_cols = _matrix_dims(b, transpose_b)
    expected = mtf.Shape(a.shape.dims[:1] + a_rows + b_cols)
    if (a.shape.dims[0] != b.shape.dims[0] or a_cols != b_rows
        or expected != output_shape):
      raise ValueError(
          "expert_matmul: %s%s x %s%s does not give %s (experts must come "
          "first and the contracted dims must match)" % (
              a.shape, "^T" if transpose_a else "", b.shape,
              "^T" if transpose_b else "", output_shape))
    self._transpose_a = transpose_a
    self._transpose_b = transpose_b
    self._contracted = a_cols
    self._outputs = [mtf.Tensor(self, output_shape, a.dtype)]

  def gradient(self, grad_ys: List[mtf.Tensor]) -> List[mtf.Tensor]:
    if self._transpose_a or self._transpose_b:
      raise NotImplementedError(
          "expert_matmul differentiates its forward form only")
    dy = grad_ys[0]
    a, b = self.inputs
    return [expert_matmul(dy, b, a.shape, transpose_b=True),
            expert_matmul(a, dy, b.shape, transpose_a=True)]

  def lower(self, lowering: mtf.Lowering) -> None:
    mesh_impl = lowering.mesh_impl(self)
    a, b = self.inputs
    output = self.outputs[0]
    output_slice_shape = mesh_impl.slice_shape(output.shape)

    def slice_fn(a_slice: tf.Tensor, b_slice: tf.Tensor) -> tf.Tensor:
      y = tf.matmul(_as_matrices(a_slice), _as_matrices(b_slice),
                    transpose_a=self._transpose_a,
                    transpose_b=self._transpose_b)
      return tf.reshape(y, output_slice_shape)

    y = mesh_impl.slicewise(slice_fn, lowering.tensors[a], lowering.tensors[b])
    a_layout = mesh_impl.tensor_layout(a.shape)
    reduced_mesh_axes = sorted({
        a_layout[a.shape.dims.index(d)] for d in self._contracted
        if a_layout[a.shape.dims.index(d)] is not None})
    if reduced_mesh_axes:
      def add_counter_fn():
        lowering.add_counter(
            "allreduce/%s/expert_matmul" % reduced_mesh_axes,
            mesh_impl.laid_out_size(output.shape))
      y = mtf.LazyAllreduceSum(mesh_impl, y, reduced_mesh_axes,
                               add_counter_fn=add_counter_fn)
    lowering.set_tensor_lowering(output, y)
    # Mesh TF's FLOP counters, as for the einsum this replaces.
    computation_shape = mtf.Shape(
        output.shape.dims + list(self._contracted))
    lowering.add_counter("einsum", mesh_impl.laid_out_size(computation_shape))
    lowering.add_counter("einsum_unique", computation_shape.size)


def _as_matrices(x: tf.Tensor) -> tf.Tensor:
  """[E, d1, ..., dn] -> [E, d1 * ... * d(n-1), dn]."""
  shape = x.shape.as_list()
  return tf.reshape(x, [shape[0], -1, shape[-1]])


def expert_matmul(a: mtf.Tensor, b: mtf.Tensor, output_shape: mtf.Shape,
                  transpose_a: bool = False,
                  transpose_b: bool = False) -> mtf.Tensor:
  """The per-expert product of `a` and `b` (see ExpertMatmulOperation)."""
  return ExpertMatmulOperation(a, b, output_shape, transpose_a,
                               transpose_b).outputs[0]
