"""Gin sweeps: a grid over bindings, one run per point, and a summary table.

`--grid "Switch.capacity_factor_train=1.0,1.25" --grid "Switch.num_experts=4,8"`
is 4 points. Each point is a training run in its own model dir under the
sweep dir, named after its bindings (`p00_capacity_factor_train-1.0_...`),
with its bindings written there as `sweep_point.gin` before it starts and
the CLI's own `operative_config.gin` once it runs. Points run locally one
after another through the pipeline (so a rerun resumes and skips finished
points), or are printed as Cloud TPU commands. The summary table reads the
points' event files, wherever they are.
"""

import dataclasses
import itertools
import os
import re
import sys
from typing import IO, List, Optional, Sequence, Tuple

import tensorflow as tf

from switch_mtf.cli import checkpoints
from switch_mtf.cli import gin_paths
from switch_mtf.cli import pipeline

POINT_CONFIG = "sweep_point.gin"
SUMMARY_FILE = "sweep_summary.md"
_BRACKETS = {"(": ")", "[": "]", "{": "}"}


def split_values(text: str) -> List[str]:
  """Splits on commas outside quotes and brackets: `1,(2, 3),'a,b'`."""
  values, current, stack, quote = [], [], [], None
  for char in text:
    if quote:
      quote = None if char == quote else quote
    elif char in "'\"":
      quote = char
    elif char in _BRACKETS:
      stack.append(_BRACKETS[char])
    elif stack and char == stack[-1]:
      stack.pop()
    elif char == "," and not stack:
      values.append("".join(current).strip())
      current = []
      continue
    current.append(char)
  if quote or stack:
    raise ValueError("Unbalanced quote or bracket in grid values %r." % text)
  values.append("".join(current).strip())
  return values


def parse_grid(specs: Sequence[str]) -> List[Tuple[str, List[str]]]:
  """["key=v1,v2", ...] -> [(key, [v1, v2]), ...] in the given order."""
  grid = []
  for spec in specs:
    key, sep, values_text = spec.partition("=")
    key = key.strip()
    if not sep or not key or not values_text.strip():
      raise ValueError(
          "Grid %r is not 'binding=value1,value2,...', e.g. "
          "--grid 'Switch.num_experts=4,8'." % spec)
    values = split_values(values_text)
    if any(not v for v in values):
      raise ValueError("Grid %r has an empty value." % spec)
    if len(set(values)) != len(values):
      raise ValueError("Grid %r repeats a value." % spec)
    if key in (k for k, _ in grid):
      raise ValueError("Binding %r appears in two --grid flags; give all its "
                       "values in one." % key)
    grid.append((key, values))
  if not grid:
    raise ValueError("Give at least one --grid 'binding=value1,value2'.")
  return grid


@dataclasses.dataclass(frozen=True)
class Point:
  index: int
  bindings: Tuple[Tuple[str, str], ...]
  name: str

  @property
  def gin_params(self) -> List[str]:
    return ["%s=%s" % (key, value) for key, value in self.bindings]


def _short_key(key: str, keys: Sequence[str]) -> str:
  """`Switch.num_experts` -> `num_experts` unless another key ends alike."""
  short = re.split(r"[./]", key)[-1]
  clash = [k for k in keys if re.split(r"[./]", k)[-1] == short]
  return short if len(clash) == 1 else key


def _slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_")


def expand(grid: Sequence[Tuple[str, List[str]]]) -> List[Point]:
  """Every combination, the last grid varying fastest."""
  keys = [k for k, _ in grid]
  points = []
  for index, values in enumerate(itertools.product(*[v for _, v in grid])):
    bindings = tuple(zip(keys, values))
    name = "p%02d_%s" % (index, "_".join(
        "%s-%s" % (_slug(_short_key(k, keys)), _slug(v)) for k, v in bindings))
    points.append(Point(index, bindings, name))
  return points


def write_point_config(model_dir: str, point: Point,
                       base_flags: Sequence[str]) -> str:
  """`<model_dir>/sweep_point.gin`: the point's bindings and base flags."""
  tf.io.gfile.makedirs(model_dir)
  lines = ["# Sweep point %d (%s); base flags:" % (point.index, point.name)]
  lines += ["#   %s" % flag for flag in base_flags]
  lines += ["%s = %s" % (key, value) for key, value in point.bindings]
  path = os.path.join(model_dir, POINT_CONFIG)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


@dataclasses.dataclass(frozen=True)
class LocalSweep:
  sweep_dir: str
  points: Tuple[Point, ...]
  gin_files: Tuple[str, ...]
  mixture: str
  train_steps: int
  gin_params: Tuple[str, ...] = ()
  eval_batches: int = 0  # >0: validation loss of each point's last step
  guarded: bool = True  # runs/reliable.gin after the sweep's gin files

  def base_flags(self) -> List[str]:
    return (["--module_import=switch_mtf.tasks"] +
            ["--gin_file=" + g for g in self.gin_files] +
            gin_paths.guard_flags(self.guarded) +
            ["--gin_param=" + p for p in (
                "MIXTURE_NAME=%r" % self.mixture,
                "utils.run.train_steps=%d" % self.train_steps,
                *self.gin_params)])

  def model_dir(self, point: Point) -> str:
    return os.path.join(self.sweep_dir, point.name)

  def phases(self) -> List[pipeline.Phase]:
    plan = []
    for point in self.points:
      flags = self.base_flags() + ["--gin_param=" + p
                                   for p in point.gin_params]
      model_dir = self.model_dir(point)
      plan.append(pipeline.Phase(
          name="train " + point.name, kind=pipeline.TRAIN,
          model_dir=model_dir, flags=flags, target_step=self.train_steps))
      if self.eval_batches:
        plan.append(pipeline.Phase(
            name="validation loss " + point.name,
            kind=pipeline.PERPLEXITY_EVAL, model_dir=model_dir,
            flags=flags + ["--gin_file=perplexity_eval.gin"] + [
                "--gin_param=" + p for p in (
                    "utils.run.dataset_split='validation'",
                    "utils.run.eval_checkpoint_step=%d" % self.train_steps,
                    "utils.run.perplexity_eval_steps=%d"
                    % self.eval_batches)],
            target_step=self.train_steps,
            result_dir=os.path.join(model_dir, "eval_*"),
            result_tag="neg_log_perplexity"))
    return plan

  def run(self, out: Optional[IO[str]] = None,
          launcher: str = pipeline.LAUNCHER) -> str:
    """Runs every point (resumably); returns the summary table."""
    out = out or sys.stdout
    with pipeline.RunDirLock(self.sweep_dir):
      for point in self.points:
        write_point_config(self.model_dir(point), point, self.base_flags())
      pipeline.run_phases(self.phases(), out, launcher)
    return write_summary(self.sweep_dir, self.points,
                         [self.model_dir(p) for p in self.points])


def summary_table(points: Sequence[Point],
                  model_dirs: Sequence[str]) -> List[str]:
  """Markdown: one row per point with its final metrics."""
  from switch_mtf.workflows import run_data  # pylint: disable=g-import-not-at-top
  keys = [k for k, _ in points[0].bindings]
  lines = ["| point | %s | steps trained | final training loss | "
           "validation CE | steps/s | tokens dropped (mean over layers) | "
           "parameters |"
           % " | ".join(keys),
           "|---|%s---|---|---|---|---|---|" % ("---|" * len(keys))]
  for point, model_dir in zip(points, model_dirs):
    values = [v for _, v in point.bindings]
    if not tf.io.gfile.isdir(model_dir):
      lines.append("| %s | %s | not run | | | | | |"
                   % (point.name, " | ".join(values)))
      continue
    run = run_data.collect(model_dir, point.name)
    # The checkpoint's step, not the last printed loss's (which can lag the
    # trained step by one when the CLI exits right after printing).
    steps = checkpoints.latest_step(model_dir)
    if steps is None:
      steps = run.final_step
    val = [s[-1][1] for k, s in run.evals.items()
           if k.endswith("/neg_log_perplexity") and s]
    dropped = [layer.scalars["tokens_dropped_fraction"][-1][1]
               for layer in run.router.values()
               if layer.scalars.get("tokens_dropped_fraction")]
    lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        point.name, " | ".join(values),
        steps if steps is not None else "–",
        _fmt(run_data.final_mean(run.loss)),
        _fmt(-val[-1] if val else None),
        _fmt(run.steps_per_second, 2),
        _fmt(sum(dropped) / len(dropped) if dropped else None),
        "{:,}".format(run.parameters) if run.parameters else "–"))
  return lines


def write_summary(sweep_dir: str, points: Sequence[Point],
                  model_dirs: Sequence[str]) -> str:
  table = "\n".join(summary_table(points, model_dirs)) + "\n"
  if not sweep_dir.startswith("gs://") or tf.io.gfile.isdir(sweep_dir):
    tf.io.gfile.makedirs(sweep_dir)
    with tf.io.gfile.GFile(os.path.join(sweep_dir, SUMMARY_FILE), "w") as f:
      f.write(table)
  return table


def _fmt(value: Optional[float], digits: int = 3) -> str:
  return "–" if value is None else "%.*f" % (digits, value)


def tpu_jobs(template, points: Sequence[Point]) -> List:
  """One TpuJob per point: model dir `<template.model_dir>/<point>`, the
  point's bindings after the template's. Each job's layout is checked
  (a point may change the number of experts)."""
  from switch_mtf.workflows import tpu_commands  # pylint: disable=g-import-not-at-top
  jobs = []
  for point in points:
    job = dataclasses.replace(
        template, model_dir="%s/%s" % (template.model_dir.rstrip("/"),
                                       point.name),
        gin_params=tuple(template.gin_params) + tuple(point.gin_params))
    tpu_commands.check_layout(job)
    jobs.append(job)
  return jobs
