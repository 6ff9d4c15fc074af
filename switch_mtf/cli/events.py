"""Scalars from TensorBoard event files, local or on GCS, and writing them.

A model dir gets one event file per process that trained in it: a run that
was interrupted and resumed has several, and the steps between its last
checkpoint and the interruption appear twice (the resumed process redid
them). `read_scalars` keeps the later copy of each step; `wall_clock` turns
event times into training time that counts each process's start-up but not
the time lost to interruptions.
"""

import dataclasses
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

EVENT_GLOB = "events.out.tfevents.*"
# The demo's per-step copy of the CLI's printed loss (see pipeline.py).
PER_STEP_DIR = "train_per_step"
PER_STEP_LOSS_TAG = "loss"


@dataclasses.dataclass(frozen=True)
class ScalarPoint:
  step: int
  value: float
  wall_time: float
  segment: int  # index of the event file (= training process), in order


@dataclasses.dataclass(frozen=True)
class Segment:
  """One event file: one process's stay in a directory."""
  path: str
  start_time: float  # its first event (written when the writer opened)


def event_files(directory: str) -> List[str]:
  """The directory's event files (any order; read_scalars orders them)."""
  return tf.io.gfile.glob(os.path.join(directory, EVENT_GLOB))


def _value(value) -> Optional[float]:
  if value.HasField("simple_value"):
    return float(value.simple_value)
  if value.HasField("tensor"):
    array = tf.make_ndarray(value.tensor)
    if array.size == 1 and array.dtype.kind in "fiu":
      return float(array.reshape(()))
  return None


def _read_file(path: str, keep_tag: Callable[[str], bool]):
  """(first event's wall time, [(tag, step, value, wall_time)])."""
  start, values = None, []
  try:
    for event in tf.compat.v1.train.summary_iterator(path):
      if start is None:
        start = event.wall_time
      for value in event.summary.value:
        if keep_tag(value.tag):
          number = _value(value)
          if number is not None:
            values.append((value.tag, int(event.step), number,
                           event.wall_time))
  except tf.errors.DataLossError:
    pass  # A process killed mid-write truncates its last record.
  return (start if start is not None else 0.0), values


def read_scalars(
    directory: str,
    keep_tag: Callable[[str], bool] = lambda tag: True,
) -> Tuple[Dict[str, List[ScalarPoint]], List[Segment]]:
  """tag -> points sorted by step; and the segments, oldest first.

  Reads every event file directly in `directory` (not subdirectories). When
  several files have the same tag and step, the newest file's value wins.
  """
  files = sorted((_read_file(path, keep_tag) + (path,)
                  for path in event_files(directory)),
                 key=lambda item: (item[0], item[2]))
  by_tag: Dict[str, Dict[int, ScalarPoint]] = {}
  segments = []
  for index, (start, values, path) in enumerate(files):
    segments.append(Segment(path, start))
    for tag, step, number, wall_time in values:
      by_tag.setdefault(tag, {})[step] = ScalarPoint(step, number, wall_time,
                                                     index)
  scalars = {tag: [points[s] for s in sorted(points)]
             for tag, points in by_tag.items()}
  return scalars, segments


def wall_clock(points: Sequence[ScalarPoint],
               segments: Sequence[Segment]) -> List[Tuple[float, float]]:
  """(seconds of training time, value) per point.

  Time within a process counts from its event file's first event, so its
  start-up (imports, graph, session) is included; when a later process
  resumed, the earlier one counts only up to its last point that was kept,
  so the redone steps and the downtime between the processes are not.
  """
  offset = 0.0
  last_kept: Dict[int, float] = {}
  for point in points:
    last_kept[point.segment] = max(last_kept.get(point.segment, 0.0),
                                   point.wall_time)
  offsets = {}
  for index in sorted(last_kept):
    offsets[index] = offset
    offset += last_kept[index] - segments[index].start_time
  return [(offsets[p.segment] + p.wall_time - segments[p.segment].start_time,
           p.value) for p in points]


def list_subdirs(directory: str) -> List[str]:
  """Immediate subdirectories (names), sorted."""
  if not tf.io.gfile.isdir(directory):
    return []
  return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(directory)
                if tf.io.gfile.isdir(os.path.join(directory, name)))


class ScalarWriter:
  """Appends scalars to a new event file in `directory` (one per process).

  The file is opened at construction, so its first event marks the start of
  the process that writes it (see `wall_clock`).
  """

  def __init__(self, directory: str):
    # Creating the writer writes the file's first (file_version) event.
    self._writer = tf.summary.create_file_writer(directory)

  def write(self, tag: str, step: int, value: float) -> None:
    with self._writer.as_default():
      tf.summary.scalar(tag, value, step=step)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


def quiet_tensorflow_logs() -> None:
  """Hides TF's Python deprecation notices (summary_iterator prints one per
  file read): in a tool's output they are noise."""
  tf.get_logger().setLevel("ERROR")
