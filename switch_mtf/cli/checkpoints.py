"""Which checkpoints of a model dir are complete, and removing the rest.

TF's Saver writes a checkpoint in an order that makes interruption safe:
shards go to `<prefix>_temp/`, are merged into `<prefix>.index` +
`<prefix>.data-*`, and only then is the `checkpoint` state file (written
atomically, via a `.tmp<hex>` file and a rename) pointed at the new prefix;
the `.meta` graph is written (also atomically) after that. The estimator
resumes from the state file's checkpoint, so an interrupted save is never
*used*, but it can leave files behind: a `_temp` directory, `.tmp<hex>`
files, or a merged checkpoint newer than the state file. `remove_partial`
deletes exactly those, so that a model dir holds only complete checkpoints.

`verify` reads every tensor of a checkpoint (the bundle format checksums each
one), so a truncated or corrupt file is reported with its path instead of
being restored.
"""

import os
import re
from typing import List, Optional

import tensorflow as tf

STATE_FILE = "checkpoint"
_PREFIX = "model.ckpt-"
_CHECKPOINT_FILE = re.compile(
    r"^model\.ckpt-(\d+)(?:\.index|\.meta|\.data-(\d{5})-of-(\d{5}))$")
_TEMP_DIR = re.compile(r"^model\.ckpt-\d+_temp(?:_[0-9a-f]+)?$")
_ATOMIC_WRITE_LEFTOVER = re.compile(r"\.tmp[0-9a-f]{32}$")


class CorruptCheckpointError(RuntimeError):
  """A checkpoint the state file points at cannot be read completely."""

  def __init__(self, path: str, reason: str):
    super().__init__(
        "Checkpoint %s is incomplete or corrupt (%s). It was not restored. "
        "Delete its files and point %s at the previous checkpoint to resume "
        "from there, or start over with a new model dir."
        % (path, reason, STATE_FILE))
    self.path = path


def checkpoint_path(model_dir: str, step: int) -> str:
  return os.path.join(model_dir, "%s%d" % (_PREFIX, step))


def step_of(path: str) -> int:
  """`.../model.ckpt-1200` -> 1200."""
  name = os.path.basename(path)
  if not name.startswith(_PREFIX) or not name[len(_PREFIX):].isdigit():
    raise ValueError("Not a checkpoint prefix: %r (expected "
                     "'<dir>/model.ckpt-<step>')." % path)
  return int(name[len(_PREFIX):])


def latest_step(model_dir: str) -> Optional[int]:
  """Step of the checkpoint the estimator would resume from, or None."""
  if not tf.io.gfile.exists(os.path.join(model_dir, STATE_FILE)):
    return None
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None or not state.model_checkpoint_path:
    return None
  return step_of(state.model_checkpoint_path)


def files_present(model_dir: str, step: int) -> Optional[str]:
  """None if the index and every data shard exist, else what is missing."""
  prefix = "%s%d" % (_PREFIX, step)
  names = set(tf.io.gfile.listdir(model_dir)) if tf.io.gfile.isdir(
      model_dir) else set()
  if prefix + ".index" not in names:
    return "no %s.index" % prefix
  shards = [m for m in map(_CHECKPOINT_FILE.match, names)
            if m and int(m.group(1)) == step and m.group(3)]
  if not shards:
    return "no %s.data-* files" % prefix
  expected = int(shards[0].group(3))
  if len(shards) != expected:
    return "%d of %d data shards" % (len(shards), expected)
  return None


def verify(model_dir: str, step: int) -> None:
  """Raises CorruptCheckpointError unless every tensor of `step` reads."""
  path = checkpoint_path(model_dir, step)
  missing = files_present(model_dir, step)
  if missing:
    raise CorruptCheckpointError(path, missing)
  try:
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  # A truncated data file surfaces as IndexError ("Read less bytes than
  # requested"), a bad checksum as DataLossError (an OpError).
  except (tf.errors.OpError, ValueError, IndexError) as error:
    raise CorruptCheckpointError(path, str(error).splitlines()[0]) from error


def remove_partial(model_dir: str) -> List[str]:
  """Deletes leftovers of interrupted saves; returns the removed paths.

  Only call this while no process writes to `model_dir`.
  """
  if not tf.io.gfile.isdir(model_dir):
    return []
  latest = latest_step(model_dir)
  removed = []
  for name in sorted(tf.io.gfile.listdir(model_dir)):
    name = name.rstrip("/")
    path = os.path.join(model_dir, name)
    match = _CHECKPOINT_FILE.match(name)
    newer_than_state = match and (latest is None or
                                  int(match.group(1)) > latest)
    if _TEMP_DIR.match(name) and tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    elif _ATOMIC_WRITE_LEFTOVER.search(name) or newer_than_state:
      tf.io.gfile.remove(path)
    else:
      continue
    removed.append(path)
  return removed
