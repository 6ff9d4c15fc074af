"""Which checkpoint a run resumes from: verified, fallback only on request.

Checkpoints are written by TF's own Saver (as Mesh TF's training does) into
a temporary model dir, then damaged the ways files get damaged: truncated,
bytes flipped, state file garbled or deleted.
"""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.cli import checkpoints
from switch_mtf.training import checkpoint_guard

STEPS = (0, 5, 10)


@pytest.fixture(name="model_dir")
def fixture_model_dir(tmp_path):
  """Checkpoints at STEPS; variable `w` holds the step number."""
  model_dir = str(tmp_path / "model")
  os.makedirs(model_dir)
  with tf.Graph().as_default():
    w = tf.get_variable("w", initializer=np.zeros([64], np.float32))
    step = tf.placeholder(tf.float32, [])
    assign = w.assign(tf.fill([64], step))
    saver = tf.train.Saver(sharded=True, max_to_keep=None,
                           save_relative_paths=True)
    with tf.Session() as session:
      for s in STEPS:
        session.run(assign, {step: s})
        saver.save(session, os.path.join(model_dir, "model.ckpt"),
                   global_step=s)
  return model_dir


def _data_file(model_dir, step):
  return os.path.join(model_dir,
                      "model.ckpt-%d.data-00000-of-00001" % step)


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _flip_bytes(path):
  with open(path, "r+b") as f:
    data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    f.seek(0)
    f.write(data)


def _w(model_dir):
  return tf.train.load_checkpoint(
      tf.train.latest_checkpoint(model_dir)).get_tensor("w")[0]


def test_fresh_dir_and_complete_latest_resume_as_tf_would(model_dir, tmp_path):
  assert checkpoint_guard.resume_point(str(tmp_path / "empty")) is None
  assert checkpoint_guard.resume_point(model_dir) == 10


@pytest.mark.parametrize("damage", [_truncate, _flip_bytes])
def test_damaged_latest_stops_with_path_and_the_way_out(model_dir, damage):
  damage(_data_file(model_dir, 10))
  with pytest.raises(checkpoint_guard.CheckpointError) as error:
    checkpoint_guard.resume_point(model_dir)
  message = str(error.value)
  assert checkpoints.checkpoint_path(model_dir, 10) in message
  assert "incomplete or corrupt" in message
  # Names the step it could fall back to and how to ask for it.
  assert checkpoints.checkpoint_path(model_dir, 5) + " (step 5)" in message
  assert checkpoint_guard.FALLBACK_ENV_VAR in message
  # Nothing was changed: the state file still points at step 10.
  assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-10")


def test_fallback_when_asked_moves_damaged_files_aside(model_dir):
  _truncate(_data_file(model_dir, 10))
  assert checkpoint_guard.resume_point(model_dir, fall_back=True) == 5
  assert tf.train.latest_checkpoint(model_dir) == os.path.join(
      model_dir, "model.ckpt-5")
  assert _w(model_dir) == 5.0
  moved = os.listdir(os.path.join(model_dir, checkpoint_guard.QUARANTINE_DIR))
  assert sorted(moved) == ["model.ckpt-10.data-00000-of-00001",
                           "model.ckpt-10.index", "model.ckpt-10.meta"]
  # The rewritten state file keeps relative paths, as Mesh TF's Saver does.
  state = open(os.path.join(model_dir, "checkpoint")).read()
  assert model_dir not in state
  assert checkpoint_guard.resume_point(model_dir) == 5


def test_fallback_env_variable_counts_as_asking(monkeypatch):
  monkeypatch.setenv(checkpoint_guard.FALLBACK_ENV_VAR, "1")
  assert checkpoint_guard.fall_back_requested(False)
  monkeypatch.setenv(checkpoint_guard.FALLBACK_ENV_VAR, "0")
  assert not checkpoint_guard.fall_back_requested(False)


def test_fallback_skips_every_damaged_checkpoint(model_dir):
  _truncate(_data_file(model_dir, 10))
  os.remove(os.path.join(model_dir, "model.ckpt-5.index"))
  assert checkpoint_guard.resume_point(model_dir, fall_back=True) == 0
  assert _w(model_dir) == 0.0


def test_nothing_complete_to_fall_back_to(model_dir):
  for step in STEPS:
    _truncate(_data_file(model_dir, step))
  with pytest.raises(checkpoint_guard.CheckpointError,
                     match="no earlier checkpoint .* is complete"):
    checkpoint_guard.resume_point(model_dir, fall_back=True)


def test_garbled_state_file_is_not_taken_for_a_fresh_start(model_dir):
  # TF logs "Checkpoint ignored" and would train from scratch over the run.
  with open(os.path.join(model_dir, "checkpoint"), "w") as f:
    f.write("model_checkpoint_path: \"model.ckpt-10\n garbage {")
  assert tf.train.get_checkpoint_state(model_dir) is None
  with pytest.raises(checkpoint_guard.CheckpointError,
                     match="cannot be parsed.*model.ckpt-10 \\(step 10\\)"):
    checkpoint_guard.resume_point(model_dir)
  assert checkpoint_guard.resume_point(model_dir, fall_back=True) == 10
  assert os.path.exists(os.path.join(
      model_dir, checkpoint_guard.QUARANTINE_DIR, "checkpoint"))


def test_missing_state_file_beside_checkpoints_is_reported(model_dir):
  os.remove(os.path.join(model_dir, "checkpoint"))
  with pytest.raises(checkpoint_guard.CheckpointError,
                     match=r"holds checkpoints \(steps \[0, 5, 10\]\)"):
    checkpoint_guard.resume_point(model_dir)


def test_kill_during_the_first_save_starts_over(model_dir):
  # Step 0 merged, state file not yet written: nothing to lose.
  for name in os.listdir(model_dir):
    if not name.startswith("model.ckpt-0."):
      os.remove(os.path.join(model_dir, name))
  assert checkpoint_guard.resume_point(model_dir) is None


def test_run_start_is_recorded_once_before_the_first_checkpoint(tmp_path):
  model_dir = str(tmp_path)
  assert checkpoint_guard.run_start_step(model_dir) is None
  listener = checkpoint_guard.RecordRunStart(model_dir)
  listener.before_save(None, 600)  # e.g. initialised from step 600
  listener.before_save(None, 700)
  assert checkpoint_guard.run_start_step(model_dir) == 600
  assert os.listdir(model_dir) == [checkpoint_guard.RUN_START_FILE]
