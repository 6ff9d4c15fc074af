"""kill -9 and rerun through the CLI: the run ends exactly as if never killed.

A reference run trains Switch-Tiny (with dropout and router jitter, so the
random streams matter) for 20 steps with runs/reliable.gin. Other runs of
the same command are killed with SIGKILL at random moments, including while
a checkpoint is being written, and rerun until they finish; their final
weights must equal the reference bit for bit, and every loss they print must
be the reference's loss of that step. A damaged checkpoint stops the rerun
with its path, and is replaced by the previous one only when asked.
"""

import os
import random
import re
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from switch_mtf.training import checkpoint_guard
from tests.cli import cli_runs

STEPS, EVERY = 20, 5
FLAGS = (*cli_runs.TINY_TRAIN_FLAGS,
         "--gin_file=runs/reliable.gin",
         "--gin_param=dropout_rate=0.1",
         "--gin_param=utils.run.train_steps=%d" % STEPS,
         "--gin_param=utils.run.save_checkpoints_steps=%d" % EVERY)
# Mesh TF prints "step, tf_loss[<loss>][<global step>]" for every step; the
# global step is read while the step updates it, so only the loss counts.
_LOSS = re.compile(r"step, tf_loss\[([^\]]+)\]\[\d+\]\n")
_TEMP = re.compile(r"^model\.ckpt-(\d+)_temp")


def _losses(log):
  return [float(v) for v in _LOSS.findall(log)]


def _weights(model_dir):
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def _assert_bitwise_equal(model_dir, reference_dir):
  ours, reference = _weights(model_dir), _weights(reference_dir)
  assert sorted(ours) == sorted(reference)
  differ = [n for n in reference if not np.array_equal(ours[n], reference[n])]
  assert not differ, "%d of %d tensors differ, e.g. %s" % (
      len(differ), len(reference), differ[:3])


def _files(model_dir):
  return os.listdir(model_dir) if os.path.isdir(model_dir) else []


def _latest_step(model_dir):
  state = tf.train.get_checkpoint_state(model_dir)
  return int(state.model_checkpoint_path.rsplit("-", 1)[1]) if state else 0


@pytest.fixture(scope="module", name="reference")
def fixture_reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("reference")
  model_dir = str(workdir / "model")
  proc = cli_runs.run_cli(model_dir, FLAGS, cwd=str(workdir))
  assert proc.returncode == 0, proc.stdout[-4000:]
  losses = _losses(proc.stdout)
  assert len(losses) == STEPS and all(np.isfinite(losses))
  return model_dir, losses


def _kill_when(model_dir, workdir, ready, delay, flags=FLAGS):
  """Starts the CLI; SIGKILLs it `delay` s after `ready(...)` is true.

  `ready(model_dir, log_text, first_step)` is polled every 5 ms.

  Returns None if the run finished first, else (first step of the run, its
  log, whether a checkpoint write was in progress at the kill).
  """
  first_step = _latest_step(model_dir)
  log_path = os.path.join(workdir, "killed-%d.log" % time.monotonic_ns())
  with open(log_path, "w") as log:
    proc = subprocess.Popen(
        [cli_runs.LAUNCHER, "--model_dir=" + model_dir, *flags],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                 CUDA_VISIBLE_DEVICES=""))
    while proc.poll() is None:
      with open(log_path) as f:
        if ready(model_dir, f.read(), first_step):
          break
      time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is not None:
      return None
    os.kill(proc.pid, signal.SIGKILL)
    writing = any(map(_TEMP.match, _files(model_dir)))
    proc.wait()
  with open(log_path) as f:
    return first_step, f.read(), writing


def _after_step(step):
  """Ready once the run has printed the loss of global step `step`."""
  def ready(model_dir, log_text, first_step):
    del model_dir
    return first_step + len(_losses(log_text)) >= step
  return ready


def _writing_a_new_checkpoint(model_dir, log_text, first_step):
  """A save is under way, not the re-save of the step the run started at."""
  del log_text
  fresh = not os.path.exists(os.path.join(model_dir, "checkpoint"))
  return any(int(m.group(1)) > first_step or fresh
             for m in map(_TEMP.match, _files(model_dir)) if m)


def _rerun_and_check(model_dir, workdir, reference, killed, flags=FLAGS,
                     run_start=0):
  """Reruns to the end; checks every run's losses and the final weights.

  `reference`: (model dir, losses) of the uninterrupted run, which started
  training at global step `run_start`.
  """
  reference_dir, reference_losses = reference
  for first_step, log, _ in killed:
    printed = _losses(log)
    first = max(first_step - run_start, 0)
    assert printed == reference_losses[first:first + len(printed)]
  resume_step = _latest_step(model_dir)
  proc = cli_runs.run_cli(model_dir, flags, cwd=workdir)
  assert proc.returncode == 0, proc.stdout[-4000:]
  if resume_step > run_start:
    assert "Skipping %d steps of data" % (resume_step - run_start) in (
        proc.stdout)
  assert _losses(proc.stdout) == reference_losses[
      max(resume_step - run_start, 0):]
  _assert_bitwise_equal(model_dir, reference_dir)


def test_kill_9_at_a_random_moment_then_rerun_is_bitwise_equal(reference,
                                                               tmp_path):
  seed = random.randrange(2**32)
  print("kill moment seed:", seed)  # shown on failure, to replay it
  rng = random.Random(seed)
  model_dir = str(tmp_path / "model")
  # During a random step of the second half, in or between checkpoints.
  killed = _kill_when(model_dir, str(tmp_path),
                      _after_step(rng.randint(6, STEPS - 1)),
                      rng.uniform(0, 0.05))
  assert killed is not None, "the run finished before the kill"
  _rerun_and_check(model_dir, str(tmp_path), reference, [killed])


@pytest.mark.slow
def test_repeated_kills_including_during_checkpoint_writes(reference,
                                                           tmp_path):
  rng = random.Random(2026)
  model_dir, killed = str(tmp_path / "model"), []
  # Three kills inside checkpoint writes (the first one inside the very
  # first save), then one at a random later step.
  for ready in (_writing_a_new_checkpoint,) * 3 + (_after_step(rng.randint(
      12, STEPS - 1)),):
    result = _kill_when(model_dir, str(tmp_path), ready, 0.0)
    if result is not None:
      killed.append(result)
  assert sum(writing for _, _, writing in killed) >= 2, (
      "fewer than 2 kills landed inside a checkpoint write")
  _rerun_and_check(model_dir, str(tmp_path), reference, killed)


def test_damaged_checkpoint_stops_the_rerun_with_its_path(reference,
                                                          tmp_path):
  model_dir = str(tmp_path / "model")
  shutil.copytree(reference[0], model_dir)
  data = os.path.join(model_dir, "model.ckpt-20.data-00000-of-00002")
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 2)
  proc = cli_runs.run_cli(model_dir, FLAGS, cwd=str(tmp_path))
  assert proc.returncode != 0
  assert ("CheckpointError: Checkpoint %s/model.ckpt-20 is incomplete or "
          "corrupt" % model_dir) in proc.stdout
  assert "model.ckpt-15 (step 15)" in proc.stdout
  assert checkpoint_guard.FALLBACK_ENV_VAR in proc.stdout
  assert _latest_step(model_dir) == 20  # not silently replaced


@pytest.mark.slow
def test_fallback_when_asked_resumes_from_the_previous_checkpoint(reference,
                                                                  tmp_path):
  model_dir = str(tmp_path / "model")
  shutil.copytree(reference[0], model_dir)
  data = os.path.join(model_dir, "model.ckpt-20.data-00001-of-00002")
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 2)
  proc = cli_runs.run_cli(model_dir, [
      *FLAGS, "--gin_param=reliable_train_model."
      "fall_back_to_previous_checkpoint=True"], cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert "As asked, falling back to %s/model.ckpt-15" % model_dir in (
      proc.stdout)
  assert _losses(proc.stdout) == reference[1][15:]
  _assert_bitwise_equal(model_dir, reference[0])


@pytest.mark.slow
def test_same_seed_same_loss_curve_and_weights(reference, tmp_path):
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, FLAGS, cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert _losses(proc.stdout) == reference[1]
  _assert_bitwise_equal(model_dir, reference[0])


@pytest.mark.slow
def test_kill_9_of_a_run_initialised_from_a_checkpoint(reference, tmp_path):
  # As fine-tuning does: a new model dir, weights and global step from
  # another run's checkpoint; the resumed run must skip and replay only the
  # steps since step 10, not since step 0.
  flags = FLAGS + ("--gin_param=utils.run.init_checkpoint='%s'"
                   % os.path.join(reference[0], "model.ckpt-10"),)
  uninterrupted_dir = str(tmp_path / "uninterrupted")
  proc = cli_runs.run_cli(uninterrupted_dir, flags, cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  losses = _losses(proc.stdout)
  assert len(losses) == STEPS - 10
  model_dir = str(tmp_path / "model")
  # Its log counts from step 11: 6 losses printed = global step 16.
  killed = _kill_when(model_dir, str(tmp_path), _after_step(6), 0.0, flags)
  assert killed is not None, "the run finished before the kill"
  assert open(os.path.join(
      model_dir, checkpoint_guard.RUN_START_FILE)).read() == "10\n"
  _rerun_and_check(model_dir, str(tmp_path), (uninterrupted_dir, losses),
                   [killed], flags, run_start=10)
