"""Slots by gate: each expert keeps its tokens with the highest gates.

Mesh TF's `switch_max` gating gives an expert's C slots to the C tokens with
the highest router probability among those that chose it (a top-k over the
group per expert), instead of to the first C in token order. Here the same
choice is made by ranking tokens within their expert: a sort by (expert,
gate descending, position), O(S log S) per group and no [S, S] or
[G, S, E, C] tensor, so both dispatch modes can use it. Ties go to the
earlier position, as tf.math.top_k breaks them.
"""

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf


def positions_by_gate(gate: mtf.Tensor, expert_index: mtf.Tensor,
                      nonpadding: mtf.Tensor, num_experts: int) -> mtf.Tensor:
  """Each real token's rank by gate among the real tokens of its expert.

  Args:
    gate: [O, G, S] float32 gate of each token's expert.
    expert_index: [O, G, S] int32 expert of each token.
    nonpadding: [O, G, S] float32, 1.0 for real tokens; padding is ranked
      apart from every expert (the caller never keeps it).
    num_experts: E.

  Returns:
    [O, G, S] float32 ranks: 0 for the highest gate of its expert, 1 for
    the next, ... (a token is kept if its rank < capacity). No gradient.
  """
  group_dim = gate.shape.dims[-1]

  def tf_fn(gate_slice, index_slice, real_slice):
    size = group_dim.size
    # Padding goes to a pseudo-expert E behind every real one.
    expert = tf.where(real_slice > 0, index_slice,
                      tf.fill(tf.shape(index_slice), num_experts))
    # Two stable sorts: by gate (descending), then by expert.
    by_gate = tf.argsort(gate_slice, axis=-1, direction="DESCENDING",
                         stable=True)
    by_expert = tf.argsort(tf.gather(expert, by_gate, batch_dims=2),
                           axis=-1, stable=True)
    order = tf.gather(by_gate, by_expert, batch_dims=2)
    sorted_expert = tf.gather(expert, order, batch_dims=2)
    # Rank within the expert = sorted position - where the expert starts.
    counts = tf.reduce_sum(tf.one_hot(expert, num_experts + 1,
                                      dtype=tf.int32), axis=-2)
    starts = tf.math.cumsum(counts, axis=-1, exclusive=True)
    rank_sorted = (tf.range(size, dtype=tf.int32)
                   - tf.gather(starts, sorted_expert, batch_dims=2))
    inverse = tf.argsort(order, axis=-1, stable=True)
    return tf.cast(tf.gather(rank_sorted, inverse, batch_dims=2), tf.float32)

  outer_dim, groups_dim, _ = gate.shape.dims
  return mtf.slicewise(tf_fn, [gate, expert_index, nonpadding],
                       output_shape=gate.shape, output_dtype=tf.float32,
                       splittable_dims=[outer_dim, groups_dim],
                       grad_function=0, name="positions_by_gate")
