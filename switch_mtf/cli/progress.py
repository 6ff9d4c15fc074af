"""Progress of a running `t5_mesh_transformer` process, read from its log.

The CLI has no progress API, but its log says everything a progress line
needs: on CPU/GPU, Mesh TF's model function wraps the loss in a `tf.Print`,
so every training step prints `step, tf_loss[<loss>][<global step>]`; the
Saver logs `Restoring parameters from .../model.ckpt-<step>` when a run
resumes and `Saving checkpoints for <step>` when it writes one; the decoding
eval logs `<tag> at step <step>: <value>` per metric and the estimator's
evaluate (perplexity eval) `Saving dict for global step <step>: k = v, ...`.

absl prints most lines twice (once as `INFO:tensorflow:...`, once with its own
`I1130 12:00:00.000 123 file.py:10] ...` prefix); the parser strips either
prefix and ignores the repeat.

The step inside `tf_loss[...][step]` is read while the step's own increment
runs, so it lags now and then (`[1] [1] [3] [3] [4] [5]` for steps 1-6).
`LogParser` numbers steps itself instead: each print is one step, counted
from the step of the checkpoint the process saved (fresh run) or restored
(resumed run) before its first step.
"""

import collections
import dataclasses
import re
import time
from typing import Deque, Dict, Optional, Tuple, Union

_NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf|NaN|Inf)"
_STEP_LOSS = re.compile(r"step, tf_loss\[(%s)\]\[(\d+)\]" % _NUMBER)
_RESTORED = re.compile(r"Restoring parameters from (\S*model\.ckpt-(\d+))")
_SAVED = re.compile(r"Saving checkpoints for (\d+) into")
_EVAL_METRIC = re.compile(r"^(eval/\S+) at step (\d+): (%s)$" % _NUMBER)
_EVAL_DICT = re.compile(r"^Saving dict for global step (\d+): (.*)$")
_FINAL_LOSS = re.compile(r"^Loss for final step: (%s)\.?$" % _NUMBER)
# Start-up stages worth showing: a cold start takes 30-90 s on 2 cores.
_STAGES = (
    (re.compile(r"^Calling model_fn\.$"), "building the graph"),
    (re.compile(r"^Graph was finalized\.$"), "starting the session"),
    (re.compile(r"^Caching (?:evaluation|inference) examples\."),
     "reading the eval examples"),
    (re.compile(r"^Checkpoint path "), "decoding"),
)
# Of the estimator's eval results, the ones a progress line shows.
_SHOWN_EVAL_RESULTS = ("loss", "neg_log_perplexity", "token_accuracy")
_ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [^\]]+\] ")
_TF_PREFIX = re.compile(r"^(?:INFO|WARNING|ERROR):tensorflow:")


@dataclasses.dataclass(frozen=True)
class StepLoss:
  """One training step finished with this total loss (incl. aux losses).

  `step` is as printed by parse_line, as counted by LogParser.
  """
  step: int
  loss: float


@dataclasses.dataclass(frozen=True)
class Restored:
  """The process restored this checkpoint (resume, or eval of a step)."""
  step: int
  path: str


@dataclasses.dataclass(frozen=True)
class CheckpointSaved:
  step: int


@dataclasses.dataclass(frozen=True)
class EvalMetric:
  """One metric of the decoding eval (`eval/<task>/<metric>`)."""
  tag: str
  step: int
  value: float


@dataclasses.dataclass(frozen=True)
class EvalResults:
  """The estimator's evaluate() results, e.g. perplexity eval."""
  step: int
  values: Tuple[Tuple[str, float], ...]


@dataclasses.dataclass(frozen=True)
class TrainingFinished:
  loss: float


@dataclasses.dataclass(frozen=True)
class Stage:
  """What the process is busy with before its first step."""
  text: str


Event = Union[StepLoss, Restored, CheckpointSaved, EvalMetric, EvalResults,
              TrainingFinished, Stage]


def _strip_prefix(line: str) -> str:
  line = line.rstrip("\r\n")
  line = _ABSL_PREFIX.sub("", line, count=1)
  return _TF_PREFIX.sub("", line, count=1)


def _parse_dict(text: str) -> Tuple[Tuple[str, float], ...]:
  values = []
  for item in text.split(", "):
    key, _, value = item.partition(" = ")
    try:
      values.append((key.strip(), float(value)))
    except ValueError:
      continue  # Non-numeric entries (none in practice) are not metrics.
  return tuple(values)


def parse_line(line: str) -> Optional[Event]:
  """The event one log line reports, or None."""
  match = _STEP_LOSS.search(line)
  if match:
    return StepLoss(step=int(match.group(2)), loss=float(match.group(1)))
  text = _strip_prefix(line)
  match = _RESTORED.search(text)
  if match:
    return Restored(step=int(match.group(2)), path=match.group(1))
  match = _SAVED.search(text)
  if match:
    return CheckpointSaved(step=int(match.group(1)))
  match = _EVAL_METRIC.match(text)
  if match:
    return EvalMetric(tag=match.group(1), step=int(match.group(2)),
                      value=float(match.group(3)))
  match = _EVAL_DICT.match(text)
  if match:
    return EvalResults(step=int(match.group(1)),
                       values=_parse_dict(match.group(2)))
  match = _FINAL_LOSS.match(text)
  if match:
    return TrainingFinished(loss=float(match.group(1)))
  for pattern, stage in _STAGES:
    if pattern.search(text):
      return Stage(stage)
  return None


class LogParser:
  """parse_line over one process's log: drops absl's repeats, counts steps."""

  def __init__(self):
    self._previous: Optional[Event] = None
    self._start_step: Optional[int] = None
    self._steps = 0

  def feed(self, line: str) -> Optional[Event]:
    event = parse_line(line)
    if event is None:
      return None
    repeat = event == self._previous and not isinstance(event, StepLoss)
    self._previous = event
    if repeat:
      return None
    if isinstance(event, (Restored, CheckpointSaved)) and not self._steps:
      self._start_step = event.step
    if isinstance(event, StepLoss):
      self._steps += 1
      if self._start_step is not None:
        event = StepLoss(self._start_step + self._steps, event.loss)
    return event


def format_duration(seconds: Optional[float]) -> str:
  """`75` -> `1:15`, `3725` -> `1:02:05`; unknown -> `?`."""
  if seconds is None or seconds != seconds or seconds < 0:
    return "?"
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return "%d:%02d:%02d" % (hours, minutes, secs)
  return "%d:%02d" % (minutes, secs)


class ProgressTracker:
  """Steps/s, ETA and a one-line status for one phase of a pipeline.

  The rate is measured over the last `window_seconds` of steps seen by this
  process only, so the start-up before the first step and the steps a
  resumed run skipped do not distort it. The loss shown is the mean of the
  last `loss_window` steps (a single step's loss at batch 32 is noisy).
  """

  def __init__(self, label: str, total_steps: Optional[int],
               clock=time.monotonic, window_seconds: float = 30.0,
               loss_window: int = 20):
    self.label = label
    self.total_steps = total_steps
    self._clock = clock
    self._started = clock()
    self._window_seconds = window_seconds
    self._times: Deque[Tuple[float, int]] = collections.deque()
    self._losses: Deque[float] = collections.deque(maxlen=loss_window)
    self.step: Optional[int] = None
    self.stage = "starting"
    self.restored_step: Optional[int] = None
    self.last_checkpoint: Optional[int] = None
    self.eval_values: Dict[str, float] = {}
    # Seconds from this process's start to its first step (start-up).
    self.startup_seconds: Optional[float] = None
    # Estimated seconds of the phases after this one (for the total ETA).
    self.later_seconds: Optional[float] = None

  def update(self, event: Event) -> None:
    now = self._clock()
    if isinstance(event, StepLoss):
      if self.step is None:
        self.startup_seconds = now - self._started
      self.step = event.step
      self._losses.append(event.loss)
      self._times.append((now, event.step))
      while len(self._times) > 2 and now - self._times[0][0] > (
          self._window_seconds):
        self._times.popleft()
    elif isinstance(event, Stage):
      self.stage = event.text
    elif isinstance(event, Restored):
      self.restored_step = event.step
      self.stage = "restoring the checkpoint of step %d" % event.step
    elif isinstance(event, CheckpointSaved):
      self.last_checkpoint = event.step
      if self.step is None:
        self.stage = "writing the checkpoint of step %d" % event.step
    elif isinstance(event, EvalMetric):
      self.stage = "evaluated step %d:" % event.step
      self.eval_values[event.tag] = event.value
    elif isinstance(event, EvalResults):
      self.stage = "evaluated step %d:" % event.step
      self.eval_values.update(
          (k, v) for k, v in event.values if k in _SHOWN_EVAL_RESULTS)

  @property
  def elapsed(self) -> float:
    return self._clock() - self._started

  @property
  def steps_per_second(self) -> Optional[float]:
    if len(self._times) < 2:
      return None
    (t0, s0), (t1, s1) = self._times[0], self._times[-1]
    if t1 <= t0 or s1 <= s0:
      return None
    return (s1 - s0) / (t1 - t0)

  @property
  def mean_loss(self) -> Optional[float]:
    if not self._losses:
      return None
    return sum(self._losses) / len(self._losses)

  @property
  def eta_seconds(self) -> Optional[float]:
    rate = self.steps_per_second
    if rate is None or self.total_steps is None or self.step is None:
      return None
    return max(self.total_steps - self.step, 0) / rate

  def status(self) -> str:
    """E.g. `[2/6 pretrain switch] step 340/1000 loss 5.123 3.92 steps/s
    ETA 2:48 (all phases ~9:30) (elapsed 1:37)`."""
    parts = ["[%s]" % self.label]
    if self.step is None:
      parts.append(self.stage)
    else:
      total = "/%d" % self.total_steps if self.total_steps else ""
      parts.append("step %d%s" % (self.step, total))
      if self.mean_loss is not None:
        parts.append("loss %.3f" % self.mean_loss)
      rate = self.steps_per_second
      parts.append("%.2f steps/s" % rate if rate else "-- steps/s")
      parts.append("ETA %s" % format_duration(self.eta_seconds))
      if self.later_seconds is not None and self.eta_seconds is not None:
        parts.append("(all phases ~%s)" % format_duration(
            self.eta_seconds + self.later_seconds))
    for key, value in sorted(self.eval_values.items()):
      parts.append("%s %.4g" % (key, value))
    parts.append("(elapsed %s)" % format_duration(self.elapsed))
    return " ".join(parts)
