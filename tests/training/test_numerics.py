"""Non-finite loss, router probabilities and weights stop a run, with where.

A small TF training loop stands in for the CLI's (the end-to-end case through
the CLI is in test_fail_fast_cli.py): its loss and router metric summaries
turn non-finite at a chosen step, exactly as the Estimator's graph exposes
them (loss in the LOSSES collection, router metrics as `switch/...` scalar
summaries), and the same hooks and saving listener run in a
MonitoredSession with TF's CheckpointSaverHook ahead of them.
"""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.training import numerics

GOOD_LAYER = "encoder/block_000/layer_003"
BAD_LAYER = "decoder/block_000/layer_005"


def _nan_from(step, first_bad, last_bad=None):
  """1.0 before `first_bad` (and after `last_bad`), NaN in between."""
  bad = step >= first_bad
  if last_bad is not None:
    bad = tf.logical_and(bad, step <= last_bad)
  return tf.where(bad, np.float32(np.nan), np.float32(1.0))


def _train(model_dir, steps, loss_nan=None, router_nan=None,
           weights_nan=None, max_bad=1, save_steps=1000):
  """Runs `steps` steps; each *_nan is (first, last) steps of NaN or None.

  Steps are numbered like Mesh TF's log: the run that takes the global step
  from s - 1 to s is step s.
  """
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    step = tf.cast(global_step, tf.float32) + 1.0
    w = tf.get_variable("w", initializer=np.ones([4], np.float32))
    loss = tf.reduce_sum(w) * (_nan_from(step, *loss_nan) if loss_nan
                               else 1.0)
    tf.add_to_collection(tf.GraphKeys.LOSSES, loss)
    router_values = []
    for layer, nan in ((GOOD_LAYER, None), (BAD_LAYER, router_nan)):
      router_values.append(_nan_from(step, *nan) if nan else tf.constant(0.5))
      tf.add_to_collection(tf.GraphKeys.SUMMARIES, tf.raw_ops.ScalarSummary(
          tags="switch/%s/top1_probability_mean" % layer,
          values=router_values[-1]))
    scale = _nan_from(step, *weights_nan) if weights_nan else tf.constant(1.0)
    # The step's values are read before its global step increment.
    with tf.control_dependencies([loss, scale] + router_values):
      train_op = tf.group(w.assign(w * scale), global_step.assign_add(1))
    saver_hook = tf.train.CheckpointSaverHook(
        model_dir, save_steps=save_steps,
        saver=tf.train.Saver(max_to_keep=None),
        listeners=[numerics.FiniteCheckpointListener(model_dir)])
    hooks = [saver_hook, numerics.NonFiniteGuard(model_dir, max_bad)]
    with tf.train.MonitoredSession(hooks=hooks) as session:
      for _ in range(steps):
        session.run(train_op)


def _saved_steps(model_dir):
  return sorted(int(n.split("-")[1].split(".")[0]) for n in
                os.listdir(model_dir) if n.endswith(".index"))


def test_nonfinite_loss_stops_with_step_and_last_good_checkpoint(tmp_path):
  model_dir = str(tmp_path)
  with pytest.raises(numerics.NonFiniteError) as error:
    _train(model_dir, steps=5, loss_nan=(3, None), save_steps=2)
  message = str(error.value)
  assert "Non-finite values at step 3: loss nan" in message
  assert "router probabilities finite" in message
  assert "Last good checkpoint: %s" % os.path.join(
      model_dir, "model.ckpt-2") in message


def test_nonfinite_router_names_only_that_layer(tmp_path):
  with pytest.raises(numerics.NonFiniteError) as error:
    _train(str(tmp_path), steps=5, router_nan=(2, None))
  message = str(error.value)
  assert "step 2" in message
  assert "router probabilities non-finite in layer(s) %s." % BAD_LAYER in (
      message)
  assert GOOD_LAYER not in message


def test_stops_only_after_n_consecutive_bad_steps(tmp_path):
  # Two bad steps, then good again: allowed with N = 3.
  _train(str(tmp_path / "transient"), steps=6, loss_nan=(2, 3), max_bad=3)
  with pytest.raises(numerics.NonFiniteError,
                     match="step 4.*after 3 consecutive bad step"):
    _train(str(tmp_path / "persistent"), steps=6, loss_nan=(2, None),
           max_bad=3)


def test_no_checkpoint_is_written_with_nonfinite_weights(tmp_path):
  model_dir = str(tmp_path)
  # Weights turn NaN in step 3; the guard allows 10 bad steps, so it is the
  # checkpoint of step 3 that must refuse.
  with pytest.raises(numerics.NonFiniteError) as error:
    _train(model_dir, steps=6, loss_nan=(4, None), weights_nan=(3, None),
           max_bad=10, save_steps=1)
  message = str(error.value)
  assert "Step 3: 1 variable(s) hold non-finite values (w)" in message
  assert "the checkpoint was not written" in message
  assert message.endswith("model.ckpt-2.")
  assert _saved_steps(model_dir) == [0, 1, 2]


def test_guard_rejects_a_zero_step_budget(tmp_path):
  with pytest.raises(ValueError, match="max_consecutive_bad_steps=0"):
    numerics.NonFiniteGuard(str(tmp_path), 0)
