"""Mesh TF checkpoints written in shards and read one tensor at a time.

`write` saves tensors as TF's Saver would (a V2 bundle `model.ckpt-<step>`
with `.index` and `.data-*` files plus the `checkpoint` state file, paths
relative so the dir can move), a shard of at most `shard_bytes` at a time:
each shard is written by a SaveV2 op into `model.ckpt-<step>_temp/`, and
MergeV2Checkpoints joins them. While TensorFlow writes one shard, a thread
produces the next (read_ahead.py); a shard is saved as soon as it is full,
so memory holds two shards, or two tensors bigger than a shard, and at most
one shard more (small tensors saved just before a big one). Mesh TF
restores variables by name, in the gin's master dtype, and skips optimizer
slots it does not find (utils.run's init_checkpoint), so weights plus
`global_step` suffice.
"""

import contextlib
import os
import re
from typing import Iterable, List, Tuple

from google.protobuf import text_format
import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.checkpoints import read_ahead
from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints.errors import ConversionError
from switch_mtf.cli import checkpoints as cli_checkpoints

# The shard being written, the next one and SaveV2's buffers are in memory
# at once: 64 MiB shards keep that a few hundred MB above TensorFlow's own.
DEFAULT_SHARD_BYTES = 64 << 20
GLOBAL_STEP = "global_step"
# Variables of training that are not model weights: the step and optimizer
# slots (Adafactor's `<var>_slot_vr`, `_slot_vc`, `_slot_v`, `_slot_m`).
_TRAINING_STATE = re.compile(r"^global_step$|_slot_\w+$")


def write(directory: str, step: int,
          tensors: Iterable[Tuple[str, np.ndarray]],
          shard_bytes: int = DEFAULT_SHARD_BYTES) -> str:
  """Writes `model.ckpt-<step>` and the state file; returns the prefix.

  `tensors` is consumed in a thread of its own, up to a shard ahead; give
  arrays aligned as array_layout.aligned_empty makes them, or TensorFlow
  copies each before writing it.
  """
  prefix = cli_checkpoints.checkpoint_path(directory, step)
  temp_dir = prefix + "_temp"
  os.mkdir(temp_dir)
  parts: List[str] = []
  batch: List[Tuple[str, np.ndarray]] = []
  batch_bytes = 0
  with contextlib.closing(read_ahead.ahead(
      tensors, shard_bytes, lambda item: item[1].nbytes)) as produced:
    for name, array in produced:
      if batch and batch_bytes + array.nbytes > shard_bytes:
        parts.append(_save_part(temp_dir, len(parts), batch))
        batch, batch_bytes = [], 0
      batch.append((name, array))
      batch_bytes += array.nbytes
      del array
      if batch_bytes >= shard_bytes:  # full: save it before taking more
        parts.append(_save_part(temp_dir, len(parts), batch))
        batch, batch_bytes = [], 0
  batch.append((GLOBAL_STEP, np.array(step, dtype=np.int64)))
  parts.append(_save_part(temp_dir, len(parts), batch))
  _run(lambda: tf.raw_ops.MergeV2Checkpoints(
      checkpoint_prefixes=parts, destination_prefix=prefix,
      delete_old_dirs=True))
  if os.path.isdir(temp_dir):
    os.rmdir(temp_dir)
  name = os.path.basename(prefix)
  state = tf.train.generate_checkpoint_state_proto(
      directory, name, all_model_checkpoint_paths=[name])
  with open(os.path.join(directory, cli_checkpoints.STATE_FILE), "w") as f:
    f.write(text_format.MessageToString(state))
  return prefix


def _save_part(temp_dir: str, index: int,
               batch: List[Tuple[str, np.ndarray]]) -> str:
  part = os.path.join(temp_dir, "part-%05d" % index)
  with tf.Graph().as_default():
    feeds = {}
    values = []
    for _, array in batch:
      placeholder = tf.placeholder(tf.as_dtype(array.dtype), array.shape)
      feeds[placeholder] = array
      values.append(placeholder)
    op = tf.raw_ops.SaveV2(prefix=part,
                           tensor_names=[name for name, _ in batch],
                           shape_and_slices=[""] * len(batch),
                           tensors=values)
    with tf.Session() as session:
      session.run(op, feed_dict=feeds)
  return part


def _run(make_op) -> None:
  with tf.Graph().as_default():
    op = make_op()
    with tf.Session() as session:
      session.run(op)


class MtfCheckpoint(tensor_source.ListedSource):
  """The weights of one Mesh TF checkpoint (training state left out)."""

  def __init__(self, prefix: str):
    self.prefix = prefix
    try:
      self._reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
      raise ConversionError("%s is not a readable checkpoint (%s)." % (
          prefix, str(e).splitlines()[0])) from e
    shapes = self._reader.get_variable_to_shape_map()
    dtypes = self._reader.get_variable_to_dtype_map()
    self._listed = {name: (tuple(shapes[name]), dtypes[name].name)
                    for name in sorted(shapes)
                    if not _TRAINING_STATE.search(name)}
    self.step = (int(self._reader.get_tensor(GLOBAL_STEP))
                 if GLOBAL_STEP in shapes else None)

  def read(self, name: str) -> np.ndarray:
    try:
      return self._reader.get_tensor(name)
    except (tf.errors.OpError, IndexError) as e:
      raise ConversionError("%s: tensor %s cannot be read (%s)." % (
          self.prefix, name, str(e).splitlines()[0])) from e

  def location(self, name: str) -> str:
    return self.prefix

  def single_dtype(self) -> str:
    """The weights' one dtype (float32 or bfloat16), or a refusal."""
    dtypes = sorted({self.dtype(name) for name in self.names()})
    if dtypes not in (["float32"], ["bfloat16"]):
      raise ConversionError("%s has weights in %s; conversions need one of "
                            "float32 or bfloat16." % (self.prefix, dtypes))
    return dtypes[0]


def latest(model_dir: str, step: int = None) -> str:
  """The prefix of the model dir's checkpoint at `step` (default: latest)."""
  if step is None:
    step = cli_checkpoints.latest_step(model_dir)
    if step is None:
      raise ConversionError("%s has no checkpoint (no `checkpoint` state "
                            "file pointing at one)." % model_dir)
  missing = cli_checkpoints.files_present(model_dir, step)
  if missing:
    raise ConversionError("%s: checkpoint step %d is incomplete (%s)."
                          % (model_dir, step, missing))
  return cli_checkpoints.checkpoint_path(model_dir, step)
