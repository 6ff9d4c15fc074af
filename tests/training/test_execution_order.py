"""The execution-order races of Mesh TF's training step, removed.

Each test builds the race so that the unfixed order loses it (a slow branch
delays the op that should come first) and shows it lost without the fix.
"""

import time

import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.training import execution_order

# As the t5 CLI: graph-mode while loops (Enter/Exit), as Mesh TF builds them.
tf.disable_v2_behavior()


def _slow():
  """A scalar that takes 0.3 s (a py_func grappler cannot fold away)."""
  return tf.py_func(lambda: time.sleep(0.3) or np.float32(0), [], tf.float32,
                    stateful=True)


_ITERATIONS = 3


def _loop_draws(serialize: bool):
  """Draws of one random op in a 3-iteration while loop whose first
  iteration is slow before it draws; with parallel iterations the later
  iterations draw first."""
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(1)

    def body(i, draws):
      wait = tf.cond(tf.equal(i, 0), _slow, lambda: tf.constant(0.0))
      with tf.control_dependencies([wait]):
        draw = tf.random.uniform([8], seed=5)
      return i + 1, draws.write(i, draw)

    _, draws = tf.while_loop(
        lambda i, _: i < _ITERATIONS, body,
        [tf.constant(0), tf.TensorArray(tf.float32, _ITERATIONS)])
    draws = draws.stack()
    random_op = [op for op in graph.get_operations()
                 if op.type == "RandomUniform"][0]
    if serialize:
      frames = execution_order.while_frames([random_op])
      assert frames == ["while/while_context"]
      assert execution_order.serialize_loops(graph, frames) >= 2
  with tf.Session(graph=graph) as session:
    return session.run(draws)


def _sequential_draws():
  """The same op's stream drawn one step at a time, outside a loop."""
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(1)
    draw = tf.random.uniform([8], seed=5)
  with tf.Session(graph=graph) as session:
    return np.stack([session.run(draw) for _ in range(_ITERATIONS)])


def test_serialized_loop_iterations_draw_their_own_chunk_in_order():
  np.testing.assert_array_equal(_loop_draws(serialize=True),
                                _sequential_draws())
  # The race the serialization removes: iteration 0 drew a later chunk.
  assert not np.array_equal(_loop_draws(serialize=False),
                            _sequential_draws())


def _step_seen_by_a_slow_read(fix: bool):
  """(step a late read sees, step a read after the increment sees)."""
  graph = tf.Graph()
  with graph.as_default():
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step",
                       use_resource=True,
                       collections=[tf.GraphKeys.GLOBAL_VARIABLES,
                                    tf.GraphKeys.GLOBAL_STEP])
    with tf.control_dependencies([_slow()]):
      late_read = step.read_value()  # like Adafactor's decay rate
    increment = step.assign_add(1)  # as Mesh TF groups it: no dependency
    with tf.control_dependencies([increment]):
      after = step.read_value()  # must not become a cycle
    if fix:
      assert execution_order.increment_after_reads(graph) >= 1
    train_op = tf.group(increment, late_read, after)
  with tf.Session(graph=graph) as session:
    session.run(step.initializer)
    _, late, later = session.run([train_op, late_read, after])
    return int(late), int(later)


def test_step_increment_waits_for_the_steps_reads():
  assert _step_seen_by_a_slow_read(fix=True) == (0, 1)
  # Unfixed, the increment runs first and the late read sees the next step.
  assert _step_seen_by_a_slow_read(fix=False) == (1, 1)
