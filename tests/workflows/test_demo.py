"""The demo's pipeline on real CLI runs, shortened: tiny dims, few steps.

One pretraining phase of the demo plan is started, stopped with SIGTERM (as
`kill PID` does) once its first checkpoint after step 0 is complete, and
started again: the second run must restore that checkpoint and continue from
there (not from 0), remove the leftovers of an interrupted checkpoint save,
and a third run must skip the finished phase. The full six-phase demo is the
slow test at the end.
"""

import dataclasses
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow as tf

from switch_mtf.cli import checkpoints
from switch_mtf.cli import events
from switch_mtf.cli import pipeline
from switch_mtf.workflows import demo
from tests import repo_paths

TINY = ("d_model=32", "d_ff=64", "num_heads=2", "d_kv=16",
        "utils.run.batch_size=('sequences_per_batch', 8)")
STEPS, EVERY = 12, 4


def _config(run_dir):
  return demo.DemoConfig(run_dir=run_dir, pretrain_steps=STEPS,
                         checkpoint_every=EVERY, gin_params=TINY)


# Runs the first phase of the demo plan the way tools/demo.py runs phases.
_FIRST_PHASE = textwrap.dedent("""
    import sys
    from switch_mtf.cli import pipeline
    from switch_mtf.workflows import demo
    from tests.workflows import test_demo as t
    pipeline.raise_keyboard_interrupt_on_sigterm()
    try:
      pipeline.run_phases(demo.phases(t._config(sys.argv[1]))[:1])
    except pipeline.Interrupted as error:
      print(error)
      sys.exit(130)
    """)


def _start(run_dir):
  return subprocess.Popen(
      [sys.executable, "-c", _FIRST_PHASE, run_dir], cwd=repo_paths.REPO_DIR,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


@pytest.fixture(scope="module", name="resumed")
def fixture_resumed(tmp_path_factory):
  run_dir = str(tmp_path_factory.mktemp("demo"))
  model_dir = os.path.join(run_dir, demo.SWITCH)
  first = _start(run_dir)
  deadline = time.time() + 900
  while time.time() < deadline and first.poll() is None:
    latest = checkpoints.latest_step(model_dir) if os.path.isdir(
        model_dir) else None
    if latest and latest >= EVERY:
      break
    time.sleep(0.2)
  first.send_signal(signal.SIGTERM)
  first_log = first.communicate(timeout=120)[0]
  stopped_at = checkpoints.latest_step(model_dir)
  # What a kill during a checkpoint save leaves behind.
  leftovers = [os.path.join(model_dir, "model.ckpt-%d_temp" % (stopped_at + 1)),
               os.path.join(model_dir, "model.ckpt-%d.index" % STEPS),
               os.path.join(model_dir, "checkpoint.tmp" + "0" * 32)]
  os.makedirs(leftovers[0])
  for path in leftovers[1:]:
    open(path, "w").close()
  second = _start(run_dir)
  second_log = second.communicate(timeout=900)[0]
  third = _start(run_dir)
  third_log = third.communicate(timeout=300)[0]
  return dict(run_dir=run_dir, model_dir=model_dir, first=first,
              first_log=first_log, stopped_at=stopped_at, second=second,
              second_log=second_log, third=third, third_log=third_log,
              leftovers=leftovers)


def test_interrupted_run_stops_cleanly_with_a_resume_hint(resumed):
  assert resumed["first"].returncode == 130, resumed["first_log"][-3000:]
  assert "Run the same command again to resume" in resumed["first_log"]
  assert EVERY <= resumed["stopped_at"] < STEPS


def test_rerun_resumes_from_the_saved_step_not_from_zero(resumed):
  log, stopped_at = resumed["second_log"], resumed["stopped_at"]
  assert resumed["second"].returncode == 0, log[-3000:]
  assert "resuming from the checkpoint at step %d of %d" % (
      stopped_at, STEPS) in log
  cli_log = open(os.path.join(resumed["model_dir"], pipeline.LOG_DIR,
                              "train.log")).read()
  second_process = cli_log.split("\n==== ")[-1]
  assert "Restoring parameters from %s/model.ckpt-%d" % (
      resumed["model_dir"], stopped_at) in second_process
  assert checkpoints.latest_step(resumed["model_dir"]) == STEPS
  scalars, segments = events.read_scalars(
      os.path.join(resumed["model_dir"], events.PER_STEP_DIR))
  assert len(segments) == 2
  steps_by_segment = {}
  for point in scalars[events.PER_STEP_LOSS_TAG]:
    steps_by_segment.setdefault(point.segment, []).append(point.step)
  assert steps_by_segment[1] == list(range(stopped_at + 1, STEPS + 1))
  assert steps_by_segment[0] == list(range(1, stopped_at + 1))


def test_leftovers_of_an_interrupted_save_are_removed(resumed):
  for path in resumed["leftovers"]:
    assert "removed leftover of an interrupted checkpoint save: %s" % path in (
        resumed["second_log"])
    assert not os.path.exists(path) or path.endswith(".index")
  # The .index named a step the run then saved for real, completely.
  checkpoints.verify(resumed["model_dir"], STEPS)
  assert not glob.glob(os.path.join(resumed["model_dir"], "*_temp*"))
  assert not glob.glob(os.path.join(resumed["model_dir"], "*.tmp*"))


def test_finished_phase_is_skipped(resumed):
  assert resumed["third"].returncode == 0, resumed["third_log"][-3000:]
  assert "already done (%s at step %d): skipped" % (
      resumed["model_dir"], STEPS) in resumed["third_log"]
  assert "step 1/" not in resumed["third_log"]


def test_corrupt_checkpoint_is_reported_with_its_path(resumed, tmp_path):
  copy = str(tmp_path / "copy")
  os.makedirs(copy)
  for path in glob.glob(os.path.join(resumed["model_dir"],
                                     "model.ckpt-%d.*" % STEPS)):
    tf.io.gfile.copy(path, os.path.join(copy, os.path.basename(path)))
  checkpoints.verify(copy, STEPS)
  data = max(glob.glob(os.path.join(copy, "*.data-*")), key=os.path.getsize)
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 2)
  with pytest.raises(checkpoints.CorruptCheckpointError,
                     match=r"model\.ckpt-%d is incomplete or corrupt" % STEPS):
    checkpoints.verify(copy, STEPS)
  os.remove(data)
  with pytest.raises(checkpoints.CorruptCheckpointError, match="data shards"):
    checkpoints.verify(copy, STEPS)


def test_rerun_with_other_options_is_refused(resumed):
  other = demo.DemoConfig(run_dir=resumed["run_dir"],
                          pretrain_steps=STEPS + 1, checkpoint_every=EVERY,
                          gin_params=TINY)
  demo.check_config(_config(resumed["run_dir"]))
  with pytest.raises(ValueError, match="pretrain_steps: 12 there, 13 now"):
    demo.check_config(other)


def test_plan_uses_the_real_cli_and_our_gin_files(tmp_path):
  plan = demo.phases(_config(str(tmp_path)))
  assert [p.kind for p in plan] == [pipeline.TRAIN] * 2 + [
      pipeline.PERPLEXITY_EVAL] * 2 + [pipeline.TRAIN, pipeline.DECODE_EVAL]
  assert plan[0].command()[0].endswith("switch_mtf_transformer")
  switch, dense, _, _, finetune, evaluate = plan
  assert "--gin_file=models/switch_tiny.gin" in switch.flags
  assert "--gin_file=models/t5_tiny.gin" in dense.flags
  for phase in (switch, dense):
    assert "--gin_param=utils.run.train_steps=12" in phase.flags
    assert "--gin_param=mesh_train_dataset_fn.seed=1234" in phase.flags
  assert finetune.target_step == STEPS + 150
  assert ("--gin_param=utils.run.init_checkpoint=%r"
          % os.path.join(str(tmp_path), "switch", "model.ckpt-12")
          in finetune.flags)
  assert "--gin_param=Switch.expert_dropout_rate=0.4" in finetune.flags
  assert "--gin_file=runs/demo_eval.gin" in evaluate.flags
  for phase in plan:
    assert "--gin_file=runs/reliable.gin" in phase.flags, phase.name
  unguarded = demo.phases(dataclasses.replace(_config(str(tmp_path)),
                                              guarded=False))
  assert not any("--gin_file=runs/reliable.gin" in p.flags for p in unguarded)


@pytest.mark.slow
def test_full_demo_writes_report_and_skips_everything_on_rerun(tmp_path):
  run_dir = str(tmp_path / "demo")
  command = [sys.executable, os.path.join(repo_paths.TOOLS_DIR, "demo.py"),
             "--run_dir=" + run_dir, "--pretrain_steps=6",
             "--checkpoint_every=3", "--finetune_steps=4",
             "--finetune_checkpoint_every=2", "--validation_batches=1",
             *["--gin_param=" + p for p in TINY]]
  proc = subprocess.run(command, capture_output=True, text=True, timeout=3600,
                        check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  report_path = os.path.join(run_dir, "report.md")
  assert "Report: %s" % report_path in proc.stdout
  assert "tensorboard --logdir %s" % run_dir in proc.stdout
  for phase in ("1/6 pretrain switch", "2/6 pretrain dense",
                "6/6 evaluate on local_super_glue_cb validation"):
    assert "[%s]" % phase in proc.stdout
  text = open(report_path).read()
  for section in ("## Runs", "### switch vs dense", "## Router: switch",
                  "## Evaluation", "local_super_glue_cb", "mean_3class_f1"):
    assert section in text
  pngs = glob.glob(os.path.join(run_dir, "*.png"))
  assert len(pngs) >= 5
  assert all(os.path.getsize(p) > 5000 for p in pngs)
  rerun = subprocess.run(command, capture_output=True, text=True,
                         timeout=600, check=False)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert rerun.stdout.count("already done") == 6
  # Every training phase ran guarded (and said so in its log).
  for phase in ("switch", "dense", "switch_finetune"):
    log = open(os.path.join(run_dir, phase, "logs", "train.log")).read()
    assert "Guarded training (switch_mtf.reliable_train_model" in log, phase


def test_remaining_time_estimate_counts_undone_steps_and_phases(tmp_path):
  def train(name, target):
    return pipeline.Phase(name=name, kind=pipeline.TRAIN,
                          model_dir=str(tmp_path / name), flags=(),
                          target_step=target)
  evaluate = pipeline.Phase(
      name="eval", kind=pipeline.PERPLEXITY_EVAL,
      model_dir=str(tmp_path / "a"), flags=(), target_step=100,
      result_dir=str(tmp_path / "a" / "eval_*"), result_tag="loss")
  # Phase b has a checkpoint at step 60 of 100: 40 steps left.
  b_dir = tmp_path / "b"
  b_dir.mkdir()
  (b_dir / "checkpoint").write_text(
      'model_checkpoint_path: "model.ckpt-60"\n')
  seconds = pipeline.estimate_seconds(
      [train("a", 100), train("b", 100), evaluate], startup_seconds=10.0,
      steps_per_second=4.0, eval_seconds=7.0)
  assert seconds == pytest.approx((10 + 100 / 4) + (10 + 40 / 4) + 7)


def test_phase_times_add_up_over_invocations(tmp_path):
  config = _config(str(tmp_path))
  plan = demo.phases(config)
  switch = plan[0]
  # Interrupted after 100 s, resumed for 50 s; then skipped in a third run.
  for outcome in (pipeline.Outcome(switch, False, 100.0, None, None, 30.0,
                                   2.0, 4.0, 150.0),
                  pipeline.Outcome(switch, False, 50.0, 8, None, 30.0, 2.0,
                                   1.0, 75.0),
                  pipeline.Outcome(switch, True)):
    demo.record_outcome(config.run_dir, outcome)
  assert len(demo.load_timing(config.run_dir)) == 2
  total, parts = demo.phase_times(plan, demo.load_timing(config.run_dir))
  assert total == 150.0
  # Load weighted by time: (4 * 100 + 1 * 50) / 150 = 3.0.
  assert parts[0] == ("pretrain switch 2:30 (resumed from step 8, CPU time "
                      "3:45, load 3.0)")
  assert parts[1] == "pretrain dense 0:00"
