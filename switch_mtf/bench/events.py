"""Scalars from a model directory's TensorBoard event files.

The training process writes the Switch router metrics
(`switch/<layer>/tokens_dropped_fraction`, ...) and `loss` every 100 steps;
this reads them back without TensorBoard.
"""

import collections
import glob
import os
from typing import Dict, List, Tuple

import tensorflow.compat.v1 as tf

DROPPED = "tokens_dropped_fraction"


def read_scalars(directory: str) -> Dict[str, List[Tuple[int, float]]]:
  """tag -> [(step, value)] from the event files directly in `directory`."""
  scalars: Dict[str, List[Tuple[int, float]]] = collections.defaultdict(list)
  for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
    try:
      for event in tf.train.summary_iterator(path):
        for value in event.summary.value:
          if value.HasField("simple_value"):
            scalars[value.tag].append((int(event.step), value.simple_value))
    except tf.errors.DataLossError:  # a file cut off by an interruption
      continue
  return {tag: sorted(points) for tag, points in scalars.items()}


def mean_over_layers(scalars: Dict[str, List[Tuple[int, float]]],
                     metric: str) -> List[Tuple[int, float]]:
  """(step, mean over MoE layers) of `switch/<layer>/<metric>`."""
  by_step: Dict[int, List[float]] = collections.defaultdict(list)
  for tag, points in scalars.items():
    if tag.startswith("switch/") and tag.endswith("/" + metric):
      for step, value in points:
        by_step[step].append(value)
  return [(step, sum(v) / len(v)) for step, v in sorted(by_step.items())]
