"""Seeded random ops and replayed streams: a rebuilt graph draws the same.

Mesh TF's placement mesh seeds every random op from `random.random()` (and a
salted `hash`), so two builds of one graph draw differently, which these
tests show first; after `fix_seeds` they draw the same, slices that Mesh TF
seeds alike stay alike, and `replay` continues a stream across a restart.
"""

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.training import random_streams

BATCH = mtf.Dimension("batch", 4)
D = mtf.Dimension("d", 8)


def _dropout_graph():
  """Lowered mtf graph on 2 slices: dropout split by batch + a replicated
  random vector; returns (graph, dropout output, the vector's 2 slices)."""
  graph = tf.Graph()
  with graph.as_default():
    mtf_graph = mtf.Graph()
    mesh = mtf.Mesh(mtf_graph, "mesh")
    dropped = mtf.dropout(mtf.ones(mesh, [BATCH, D]), is_training=True,
                          rate=0.5)
    replicated = mtf.random_uniform(mesh, [D])
    impl = placement_mesh_impl.PlacementMeshImpl(
        mtf.Shape([mtf.Dimension("batch", 2)]),
        mtf.LayoutRules([("batch", "batch")]), ["", ""])
    lowering = mtf.Lowering(mtf_graph, {mesh: impl})
    output = lowering.export_to_tf_tensor(dropped)
    slices = lowering.tensors[replicated].to_laid_out_tensor().tensor_list
  return graph, output, slices


def _draw(fix_seeds: bool):
  graph, output, slices = _dropout_graph()
  if fix_seeds:
    random_streams.fix_seeds(graph, seed=7)
  with tf.Session(graph=graph) as session:
    return session.run([output, slices])


def test_two_builds_draw_differently_unless_seeds_are_fixed():
  first, second = _draw(False), _draw(False)
  assert not np.array_equal(first[0], second[0])
  first, second = _draw(True), _draw(True)
  np.testing.assert_array_equal(first[0], second[0])
  np.testing.assert_array_equal(first[1][0], second[1][0])


def test_slices_mesh_tf_seeds_alike_stay_alike():
  _, (slice_0, slice_1) = _draw(True)
  np.testing.assert_array_equal(slice_0, slice_1)
  # ... while the dropout mask differs between the batch halves.
  dropped, _ = _draw(True)
  assert not np.array_equal(dropped[:2], dropped[2:])


def _model(seed):
  """An initializer, a per-step dropout feeding the loss, global step."""
  graph = tf.Graph()
  with graph.as_default():
    w = tf.get_variable("w", [16], initializer=tf.random_normal_initializer())
    loss = tf.reduce_sum(tf.nn.dropout(w, rate=0.5))
    tf.add_to_collection(tf.GraphKeys.LOSSES, loss)
    random_streams.fix_seeds(graph, seed)
  return graph, w, loss


def test_per_step_ops_are_the_losss_random_ops_not_initializers():
  graph, _, _ = _model(seed=1)
  per_step = random_streams.per_step_ops(graph)
  assert [op.type for op in per_step] == ["RandomUniform"]
  assert "dropout" in per_step[0].name
  assert len(random_streams.stateful_random_ops(graph)) == 2


def _run(steps, replayed_steps=0):
  """Losses of `steps` steps of a fresh process that first replays some."""
  graph, w, loss = _model(seed=3)
  per_step = random_streams.per_step_ops(graph)
  with tf.Session(graph=graph) as session:
    session.run(w.initializer)
    random_streams.replay(session, per_step, replayed_steps)
    return [session.run(loss) for _ in range(steps)]


def test_replay_continues_the_stream_after_a_restart():
  uninterrupted = _run(5)
  assert _run(2, replayed_steps=3) == uninterrupted[3:]
  # Without the replay, a restart would draw the first masks again.
  assert _run(2) == uninterrupted[:2] != uninterrupted[3:]
