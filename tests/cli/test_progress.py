"""Reading progress from the CLI's log: parsing, dedup, rate, ETA, status.

The log lines are verbatim copies of what `switch_mtf_transformer` printed
in a training run, a perplexity eval and a decoding eval on this machine.
"""

import pytest

from switch_mtf.cli import progress as cp

TRAIN_LOG = """\
INFO:tensorflow:Restoring parameters from /tmp/demo/switch/model.ckpt-200
I1130 04:31:15.096963 140106330053504 saver.py:1413] Restoring parameters from /tmp/demo/switch/model.ckpt-200
step, tf_loss[5.32525301][201]
step, tf_loss[nan][202]
INFO:tensorflow:Saving checkpoints for 400 into /tmp/demo/switch/model.ckpt.
I1130 04:33:54.683021 140106330053504 basic_session_run_hooks.py:632] Saving checkpoints for 400 into /tmp/demo/switch/model.ckpt.
INFO:tensorflow:global_step/sec: 1.99368
INFO:tensorflow:Loss for final step: 4.9316893.
I1130 04:34:05.396033 140106330053504 estimator.py:361] Loss for final step: 4.9316893.
"""
EVAL_LOG = """\
INFO:tensorflow:Saving dict for global step 200: global_step = 200, loss = 5.030675, neg_log_perplexity = -5.5298615, token_accuracy = 0.28685346
I1130 04:37:40.852448 139889202674560 estimator.py:2083] Saving dict for global step 200: global_step = 200, loss = 5.030675, neg_log_perplexity = -5.5298615, token_accuracy = 0.28685346
INFO:tensorflow:eval/local_super_glue_cb/mean_3class_f1 at step 230: 21.429
I1130 04:40:43.531096 140176273607552 utils.py:2425] eval/local_super_glue_cb/mean_3class_f1 at step 230: 21.429
"""


def _events(text):
  parser = cp.LogParser()
  return [e for e in map(parser.feed, text.splitlines()) if e is not None]


def test_training_log_events_in_order_without_absl_repeats():
  events = _events(TRAIN_LOG)
  assert events[0] == cp.Restored(200, "/tmp/demo/switch/model.ckpt-200")
  assert events[1] == cp.StepLoss(201, 5.32525301)
  assert events[2].step == 202 and events[2].loss != events[2].loss  # NaN
  assert events[3:] == [cp.CheckpointSaved(400),
                        cp.TrainingFinished(4.9316893)]


def test_eval_results_and_metrics():
  events = _events(EVAL_LOG)
  assert events == [
      cp.EvalResults(200, (("global_step", 200.0), ("loss", 5.030675),
                           ("neg_log_perplexity", -5.5298615),
                           ("token_accuracy", 0.28685346))),
      cp.EvalMetric("eval/local_super_glue_cb/mean_3class_f1", 230, 21.429)]


def test_steps_are_counted_from_the_first_checkpoint_not_printed():
  # Verbatim: a fresh 6-step run with checkpoints every 3 steps; the printed
  # step lags now and then.
  log = """\
INFO:tensorflow:Saving checkpoints for 0 into /tmp/d/switch/model.ckpt.
step, tf_loss[8.7085638][1]
step, tf_loss[8.66859627][1]
step, tf_loss[8.51739216][3]
INFO:tensorflow:Saving checkpoints for 3 into /tmp/d/switch/model.ckpt.
step, tf_loss[8.3041811][3]
step, tf_loss[7.56803274][4]
step, tf_loss[8.20992374][5]
INFO:tensorflow:Saving checkpoints for 6 into /tmp/d/switch/model.ckpt.
"""
  steps = [e.step for e in _events(log) if isinstance(e, cp.StepLoss)]
  assert steps == [1, 2, 3, 4, 5, 6]


def test_steps_continue_from_a_restored_or_initial_checkpoint():
  restored = "INFO:tensorflow:Restoring parameters from /d/model.ckpt-200\n"
  # Fine-tuning from init_checkpoint: the first save is at the init step.
  initial = "INFO:tensorflow:Saving checkpoints for 1000 into /d/model.ckpt.\n"
  for head, first in ((restored, 201), (initial, 1001)):
    events = _events(head + "step, tf_loss[3.5][7]\nstep, tf_loss[3.5][7]")
    assert events[1:] == [cp.StepLoss(first, 3.5), cp.StepLoss(first + 1, 3.5)]


@pytest.mark.parametrize("line", [
    "", "INFO:tensorflow:global_step/sec: 1.99",
    "W1130 04:33:04.800005 1 basic_session_run_hooks.py:742] It seems that "
    "global step (tf.train.get_global_step) has not been increased.",
    "step, tf_loss[]", "Saving checkpoints for x"])
def test_other_lines_are_not_events(line):
  assert cp.parse_line(line) is None


class FakeClock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_rate_eta_and_mean_loss_from_steps_seen():
  clock = FakeClock()
  tracker = cp.ProgressTracker("1/6 pretrain switch", total_steps=1000,
                               clock=clock, window_seconds=30,
                               loss_window=4)
  assert "[1/6 pretrain switch] starting" in tracker.status()
  tracker.update(cp.parse_line("INFO:tensorflow:Calling model_fn."))
  assert "building the graph" in tracker.status()
  tracker.update(cp.Restored(200, "x/model.ckpt-200"))
  assert "restoring the checkpoint of step 200" in tracker.status()
  clock.now += 40  # start-up: must not count against the rate
  for i in range(10):
    tracker.update(cp.StepLoss(201 + i, float(i)))
    clock.now += 0.5  # 2 steps/s
  assert tracker.step == 210
  assert tracker.steps_per_second == pytest.approx(2.0)
  assert tracker.eta_seconds == pytest.approx(790 / 2.0)
  assert tracker.mean_loss == pytest.approx((6 + 7 + 8 + 9) / 4)
  assert tracker.startup_seconds == pytest.approx(40.0)
  tracker.later_seconds = 205.0
  status = tracker.status()
  for part in ("[1/6 pretrain switch]", "step 210/1000", "loss 7.500",
               "2.00 steps/s", "ETA 6:35", "(all phases ~10:00)",
               "elapsed 0:45"):
    assert part in status


def test_rate_window_forgets_old_steps():
  clock = FakeClock()
  tracker = cp.ProgressTracker("x", 100, clock=clock, window_seconds=10)
  for step in range(1, 11):  # 1 step/s for 10 s
    tracker.update(cp.StepLoss(step, 1.0))
    clock.now += 1.0
  for step in range(11, 51):  # then 4 steps/s
    tracker.update(cp.StepLoss(step, 1.0))
    clock.now += 0.25
  assert tracker.steps_per_second == pytest.approx(4.0)


def test_eval_values_and_unknown_eta_in_status():
  tracker = cp.ProgressTracker("6/6 evaluate", None, clock=FakeClock())
  tracker.update(cp.EvalMetric("eval/cb/accuracy", 230, 50.0))
  assert tracker.eta_seconds is None
  assert "[6/6 evaluate] evaluated step 230: eval/cb/accuracy 50" in (
      tracker.status())


@pytest.mark.parametrize("seconds,text", [
    (0, "0:00"), (75, "1:15"), (3725, "1:02:05"), (None, "?"),
    (float("nan"), "?")])
def test_format_duration(seconds, text):
  assert cp.format_duration(seconds) == text
