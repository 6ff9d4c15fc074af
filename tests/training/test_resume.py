"""kill -9 and rerun through the CLI: the run ends exactly as if never killed.

A reference run trains Switch-Tiny (with dropout and router jitter, so the
random streams matter) for 20 steps with runs/reliable.gin. Other runs of
the same command are killed with SIGKILL at moments drawn from a seed (set
SWITCH_MTF_KILL_SEED to replay a failure): during start-up, mid-step,
inside a checkpoint write, just after one. After every kill each complete
checkpoint must equal the reference's of that step bit for bit, every loss
a run printed must be the reference's loss of that step, and the finished
runs' weights must equal the reference's; a failure names the kill moment
and the first tensor that differs. A damaged checkpoint stops the rerun
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
KILL_SEED = int(os.environ.get("SWITCH_MTF_KILL_SEED", "2026"))
# Mesh TF prints "step, tf_loss[<loss>][<global step>]" for every step; the
# global step is read while the step updates it, so only the loss counts.
_LOSS = re.compile(r"step, tf_loss\[([^\]]+)\]\[\d+\]\n")
_TEMP = re.compile(r"^model\.ckpt-(\d+)_temp")


def _losses(log):
  return [float(v) for v in _LOSS.findall(log)]


def _weights(checkpoint):
  reader = tf.train.load_checkpoint(checkpoint)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def _differences(checkpoint, reference_checkpoint):
  """'' if bitwise equal, else how many tensors differ and the first."""
  ours, reference = _weights(checkpoint), _weights(reference_checkpoint)
  if sorted(ours) != sorted(reference):
    return "other variables: %s" % sorted(set(ours) ^ set(reference))
  differ = sorted(n for n in reference
                  if not np.array_equal(ours[n], reference[n]))
  if not differ:
    return ""
  first = differ[0]
  where = np.argwhere(ours[first] != reference[first])[0]
  return "%d of %d tensors differ; first %s at %s: %r vs %r" % (
      len(differ), len(reference), first, tuple(where),
      ours[first][tuple(where)], reference[first][tuple(where)])


def _assert_bitwise_equal(model_dir, reference_dir, moment="the rerun"):
  differences = _differences(tf.train.latest_checkpoint(model_dir),
                             tf.train.latest_checkpoint(reference_dir))
  assert not differences, "after %s: %s" % (moment, differences)


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


def _check_printed_losses(first_step, log, reference_losses, moment,
                          run_start=0):
  """A killed run printed the reference's losses from the step it began at
  (else the state it resumed from, left by the kill before, was wrong)."""
  printed = _losses(log)
  first = max(first_step - run_start, 0)
  assert printed == reference_losses[first:first + len(printed)], (
      "the run killed at %s printed other losses than the uninterrupted run "
      "from step %d: the state it resumed from was wrong" % (moment,
                                                              first_step))


def _rerun_and_check(model_dir, workdir, reference, killed, flags=FLAGS,
                     run_start=0, moment="the kills"):
  """Reruns to the end; checks every run's losses and the final weights.

  `reference`: (model dir, losses) of the uninterrupted run, which started
  training at global step `run_start`.
  """
  reference_dir, reference_losses = reference
  for first_step, log, _ in killed:
    _check_printed_losses(first_step, log, reference_losses, moment,
                          run_start)
  resume_step = _latest_step(model_dir)
  proc = cli_runs.run_cli(model_dir, flags, cwd=workdir)
  assert proc.returncode == 0, proc.stdout[-4000:]
  if resume_step > run_start:
    assert "Skipping %d steps of data" % (resume_step - run_start) in (
        proc.stdout)
  assert _losses(proc.stdout) == reference_losses[
      max(resume_step - run_start, 0):]
  _assert_bitwise_equal(model_dir, reference_dir, moment)


# Slow: the fast suite keeps the damaged-checkpoint rerun on the same
# reference; the whole suite kills at random and at seeded moments.
@pytest.mark.slow
def test_kill_9_at_a_random_moment_then_rerun_is_bitwise_equal(reference,
                                                               tmp_path):
  rng = random.Random(KILL_SEED)
  model_dir = str(tmp_path / "model")
  # During a random step of the second half, in or between checkpoints.
  step, delay = rng.randint(6, STEPS - 1), rng.uniform(0, 0.05)
  moment = "%.3f s after step %d (SWITCH_MTF_KILL_SEED=%d)" % (
      delay, step, KILL_SEED)
  killed = _kill_when(model_dir, str(tmp_path), _after_step(step), delay)
  assert killed is not None, "the run finished before the kill " + moment
  _rerun_and_check(model_dir, str(tmp_path), reference, [killed],
                   moment="the kill " + moment)


def _just_after_a_new_checkpoint(model_dir, log_text, first_step):
  """The state file names a checkpoint the run wrote (the rename is done)."""
  del log_text
  return _latest_step(model_dir) > first_step


def _right_away(model_dir, log_text, first_step):
  """Start-up: imports, graph build, restore, the run-start record."""
  del model_dir, log_text, first_step
  return True


# Kill moments per run of the slow test, shuffled by the seed. A checkpoint
# write lasts about 0.2 s, so some of those kills land just after it.
MOMENTS = {"checkpoint write": 7, "start-up": 5, "mid-step": 4,
           "after a checkpoint": 4}


def _draw_moment(rng, kind):
  """(description, ready, delay in s) of one kill moment of this kind."""
  if kind == "start-up":
    delay = rng.uniform(0.5, 8.0)
    return "%.2f s into start-up" % delay, _right_away, delay
  if kind == "mid-step":
    steps, delay = rng.randint(1, 4), rng.uniform(0, 0.05)
    ready = lambda model_dir, log_text, first_step: len(_losses(log_text)) >= (
        steps)
    return "%.3f s after the run's step %d" % (delay, steps), ready, delay
  if kind == "checkpoint write":
    delay = rng.uniform(0, 0.003)
    return ("%.4f s into a checkpoint write" % delay,
            _writing_a_new_checkpoint, delay)
  delay = rng.uniform(0, 0.02)
  return ("%.3f s after a checkpoint" % delay, _just_after_a_new_checkpoint,
          delay)


def _check_checkpoints(model_dir, reference_dir, moment):
  """Every complete checkpoint equals the reference's of its step."""
  if not os.path.isdir(model_dir):  # killed before the run made it
    return
  reference_steps = set(cli_runs.checkpoint_steps(reference_dir))
  for step in cli_runs.checkpoint_steps(model_dir):
    if step in reference_steps:
      differences = _differences(
          os.path.join(model_dir, "model.ckpt-%d" % step),
          os.path.join(reference_dir, "model.ckpt-%d" % step))
      assert not differences, "checkpoint %d after %s: %s" % (
          step, moment, differences)


@pytest.mark.slow
def test_seeded_kill_moments_including_inside_checkpoint_writes(reference,
                                                                tmp_path):
  """20 kills, in chains of reruns of one model dir until it finishes."""
  rng = random.Random(KILL_SEED)
  kinds = [kind for kind, n in MOMENTS.items() for _ in range(n)]
  rng.shuffle(kinds)
  reference_dir, reference_losses = reference
  landed, chain = [], 0
  model_dir = str(tmp_path / "chain-0")
  while len(landed) < len(kinds):
    kind = kinds[len(landed)]
    description, ready, delay = _draw_moment(rng, kind)
    moment = "kill %d, %s (chain %d, SWITCH_MTF_KILL_SEED=%d)" % (
        len(landed) + 1, description, chain, KILL_SEED)
    result = _kill_when(model_dir, str(tmp_path), ready, delay)
    if result is None:  # the run finished first: the chain is complete
      _assert_bitwise_equal(model_dir, reference_dir, moment)
      chain += 1
      model_dir = str(tmp_path / ("chain-%d" % chain))
      continue
    first_step, log, writing = result
    landed.append("inside a checkpoint write" if writing else kind)
    _check_printed_losses(first_step, log, reference_losses, moment)
    _check_checkpoints(model_dir, reference_dir, moment)
  _rerun_and_check(model_dir, str(tmp_path), reference, [],
                   moment="kill %d (SWITCH_MTF_KILL_SEED=%d)"
                   % (len(kinds), KILL_SEED))
  print("kills landed:", landed)
  assert landed.count("inside a checkpoint write") >= 3, (
      "fewer than 3 of the kills landed inside a checkpoint write: %s"
      % landed)


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
