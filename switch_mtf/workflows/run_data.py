"""What a model dir's event files say about its run, as plain series.

Works for any run of the CLI, local or on GCS: training loss (per step when
the pipeline recorded the printed loss, else the CLI's `loss` summary every
100 steps), steps/s, the Switch layers' router metrics
(`switch/<layer>/<metric>`, layer/metrics.py), and eval results in
subdirectories (decoding evals `eval/<task>/<metric>`, perplexity evals
`neg_log_perplexity`).
"""

import dataclasses
import os
import re
import statistics
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from switch_mtf.cli import checkpoints
from switch_mtf.cli import events

Series = List[Tuple[float, float]]  # (step or seconds, value)
ROUTER_ROOT = "switch/"
_EXPERT = re.compile(r"^expert_(\d+)$")
# Subdirectories that hold no eval results.
_NOT_EVAL_DIRS = (events.PER_STEP_DIR, "logs", "commands")


@dataclasses.dataclass
class RouterLayer:
  """Router metrics of one Switch layer over training."""
  name: str  # e.g. encoder/block_000/layer_003
  expert_fraction: Dict[int, Series] = dataclasses.field(default_factory=dict)
  scalars: Dict[str, Series] = dataclasses.field(default_factory=dict)

  @property
  def num_experts(self) -> int:
    return len(self.expert_fraction)


@dataclasses.dataclass
class RunData:
  label: str
  model_dir: str
  loss: Series  # (step, total training loss)
  loss_wall: Series  # (seconds of training time, loss)
  loss_source: str
  steps_per_second: Optional[float]
  router: Dict[str, RouterLayer]
  # "<subdir>/<tag>" -> (step, value), e.g. validation_eval/eval/cb/accuracy
  evals: Dict[str, Series]
  parameters: Optional[int]
  commands: List[str]

  @property
  def final_step(self) -> Optional[int]:
    return int(self.loss[-1][0]) if self.loss else None


def _series(points: List[events.ScalarPoint]) -> Series:
  return [(p.step, p.value) for p in points]


def _router_layers(scalars: Dict[str, List[events.ScalarPoint]]
                   ) -> Dict[str, RouterLayer]:
  layers: Dict[str, RouterLayer] = {}
  for tag, points in scalars.items():
    if not tag.startswith(ROUTER_ROOT):
      continue
    parts = tag[len(ROUTER_ROOT):].split("/")
    expert = _EXPERT.match(parts[-1])
    if expert and len(parts) >= 3:
      name, metric = "/".join(parts[:-2]), parts[-2]
    elif len(parts) >= 2:
      name, metric = "/".join(parts[:-1]), parts[-1]
    else:
      continue
    layer = layers.setdefault(name, RouterLayer(name))
    if expert and metric == "expert_fraction":
      layer.expert_fraction[int(expert.group(1))] = _series(points)
    elif not expert:
      layer.scalars[metric] = _series(points)
  return dict(sorted(layers.items()))


def count_parameters(model_dir: str) -> Optional[int]:
  """Model parameters in the latest checkpoint (no optimizer slots)."""
  step = checkpoints.latest_step(model_dir)
  if step is None:
    return None
  total = 0
  for name, shape in tf.train.list_variables(
      checkpoints.checkpoint_path(model_dir, step)):
    if name == "global_step" or "_slot_" in name:
      continue
    total += int(np.prod(shape)) if shape else 1
  return total


def _commands(model_dir: str) -> List[str]:
  """The CLI command lines recorded by t5's main in <model_dir>/commands."""
  directory = os.path.join(model_dir, "commands")
  if not tf.io.gfile.isdir(directory):
    return []

  def order(name):
    suffix = name.rpartition(".")[2]
    return int(suffix) if suffix.isdigit() else 0
  lines = []
  for name in sorted(tf.io.gfile.listdir(directory), key=order):
    with tf.io.gfile.GFile(os.path.join(directory, name)) as f:
      lines.append(f.read().strip())
  return lines


def _evals(model_dir: str) -> Dict[str, Series]:
  results = {}
  for subdir in events.list_subdirs(model_dir):
    if subdir in _NOT_EVAL_DIRS:
      continue
    scalars, _ = events.read_scalars(os.path.join(model_dir, subdir))
    for tag, points in scalars.items():
      if tag.startswith("eval/") or subdir.startswith("eval"):
        results["%s/%s" % (subdir, tag)] = _series(points)
  return dict(sorted(results.items()))


def collect(model_dir: str, label: Optional[str] = None) -> RunData:
  """Reads a run's event files (and checkpoint shapes); no training."""
  model_dir = model_dir.rstrip("/")
  if not tf.io.gfile.isdir(model_dir):
    raise FileNotFoundError(
        "Model dir %s does not exist; pass the --model_dir of a CLI run."
        % model_dir)
  scalars, segments = events.read_scalars(
      model_dir, keep_tag=lambda t: t in ("loss", "global_step/sec") or
      t.startswith(ROUTER_ROOT))
  per_step, per_step_segments = events.read_scalars(
      os.path.join(model_dir, events.PER_STEP_DIR),
      keep_tag=lambda t: t == events.PER_STEP_LOSS_TAG)
  if per_step.get(events.PER_STEP_LOSS_TAG):
    points = per_step[events.PER_STEP_LOSS_TAG]
    loss_segments, source = per_step_segments, "every step (CLI's printed loss)"
  else:
    points = scalars.get("loss", [])
    loss_segments, source = segments, "CLI `loss` summaries"
  rates = [p.value for p in scalars.get("global_step/sec", [])]
  return RunData(
      label=label or os.path.basename(model_dir),
      model_dir=model_dir,
      loss=_series(points),
      loss_wall=events.wall_clock(points, loss_segments),
      loss_source=source,
      steps_per_second=statistics.median(rates) if rates else None,
      router=_router_layers(scalars),
      evals=_evals(model_dir),
      parameters=count_parameters(model_dir),
      commands=_commands(model_dir))


def final_mean(series: Series, fraction: float = 0.1) -> Optional[float]:
  """Mean of the last `fraction` of the points (at least one)."""
  if not series:
    return None
  count = max(1, int(round(len(series) * fraction)))
  return float(np.mean([v for _, v in series[-count:]]))


def first_step_at_or_below(series: Series, target: float,
                           window: int) -> Optional[int]:
  """First step where the trailing `window`-point mean is <= target."""
  if not series:
    return None
  smoothed = moving_mean([v for _, v in series], window)
  for (step, _), value in zip(series, smoothed):
    if value <= target:
      return int(step)
  return None


def moving_mean(values: Iterable[float], window: int) -> np.ndarray:
  """Trailing mean over `window` values (shorter at the start)."""
  values = np.asarray(list(values), dtype=np.float64)
  if values.size == 0 or window <= 1:
    return values
  cumulative = np.cumsum(np.insert(values, 0, 0.0))
  out = np.empty_like(values)
  for i in range(values.size):
    lo = max(0, i + 1 - window)
    out[i] = (cumulative[i + 1] - cumulative[lo]) / (i + 1 - lo)
  return out


def smoothing_window(num_points: int) -> int:
  """100 steps as in the anchor measurements, fewer for short runs."""
  return max(1, min(100, num_points // 10))

