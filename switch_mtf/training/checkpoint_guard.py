"""The checkpoint a run resumes from: verified, never silently replaced.

A kill during a save cannot make TF resume from a half-written checkpoint:
the `checkpoint` state file moves to a new checkpoint only once it is
complete (cli/checkpoints.py). What TF does not catch: a checkpoint damaged
after it was written (a truncated copy, a bad disk), which fails deep inside
the restore, and a garbled or deleted state file, which TF takes for "no
checkpoint": the run starts from scratch and overwrites the old one.
`resume_point` verifies what a run is about to restore and stops with the
path and the reason; it falls back to the newest earlier checkpoint that
reads completely only when asked (`fall_back=True`, set by gin
`reliable_train_model.fall_back_to_previous_checkpoint` or the env variable
SWITCH_MTF_CHECKPOINT_FALLBACK=1), moving the damaged files aside.

`ContinueFromSavedState` closes the other gap between a resumed and an
uninterrupted run: Mesh TF trains float32 slices but writes its checkpoint
from the master variables, bfloat16 unless `get_variable_dtype.master_dtype`
says otherwise, so a restart would continue from rounded weights. After each
save, the slices are reloaded from what was saved (Mesh TF's own
master-to-slice copy), so both runs continue from the same state.
"""

import os
import re
from typing import List, Optional

from absl import logging
from google.protobuf import text_format
import tensorflow.compat.v1 as tf

from switch_mtf.cli import checkpoints

FALLBACK_ENV_VAR = "SWITCH_MTF_CHECKPOINT_FALLBACK"
# The global step a run started training from in its model dir: 0, or the
# step of the checkpoint it was initialised from (fine-tuning).
RUN_START_FILE = "switch_mtf_run_start"
QUARANTINE_DIR = "corrupt_checkpoints"
_INDEX_FILE = re.compile(r"^model\.ckpt-(\d+)\.index$")
_FILES_OF_STEP = r"^model\.ckpt-%d(?:\.index|\.meta|\.data-\d{5}-of-\d{5})$"
# Mesh TF's MtfRestoreHook builds its master-to-slice copy in this scope.
_RESTORE_SCOPE = "mtf_restore_hook/"


class CheckpointError(RuntimeError):
  """The model dir's checkpoint cannot be resumed from as it is."""


def fall_back_requested(flag: bool) -> bool:
  return flag or os.environ.get(FALLBACK_ENV_VAR, "") not in ("", "0")


def steps_on_disk(model_dir: str) -> List[int]:
  """Steps with an index file, newest first."""
  if not tf.io.gfile.isdir(model_dir):
    return []
  steps = [int(m.group(1)) for m in map(_INDEX_FILE.match,
                                         tf.io.gfile.listdir(model_dir)) if m]
  return sorted(steps, reverse=True)


def _reason_unusable(model_dir: str, step: int) -> Optional[str]:
  """None if `step` reads completely, else why not."""
  try:
    checkpoints.verify(model_dir, step)
  except checkpoints.CorruptCheckpointError as e:
    return str(e).split(" It was not restored.")[0]
  return None


def _write_state(model_dir: str, step: int, steps: List[int]) -> None:
  """Points the state file at `step` (relative paths, atomic rename)."""
  names = ["model.ckpt-%d" % s for s in sorted(steps)]
  state = tf.train.generate_checkpoint_state_proto(
      os.path.abspath(model_dir), "model.ckpt-%d" % step,
      all_model_checkpoint_paths=names)
  path = os.path.join(model_dir, checkpoints.STATE_FILE)
  with tf.io.gfile.GFile(path + ".switch_mtf_tmp", "w") as f:
    f.write(text_format.MessageToString(state))
  tf.io.gfile.rename(path + ".switch_mtf_tmp", path, overwrite=True)


def _quarantine(model_dir: str, steps: List[int], state_file: bool) -> str:
  """Moves the files of `steps` (and the state file) aside; returns where."""
  target = os.path.join(model_dir, QUARANTINE_DIR)
  tf.io.gfile.makedirs(target)
  patterns = [re.compile(_FILES_OF_STEP % s) for s in steps]
  for name in tf.io.gfile.listdir(model_dir):
    if any(p.match(name) for p in patterns) or (
        state_file and name == checkpoints.STATE_FILE):
      tf.io.gfile.rename(os.path.join(model_dir, name),
                         os.path.join(target, name), overwrite=True)
  return target


def resume_point(model_dir: str, fall_back: bool = False) -> Optional[int]:
  """The step a run in `model_dir` may resume from; None for a fresh run.

  Raises:
    CheckpointError: the state file is unreadable or missing beside
      checkpoints, or its checkpoint does not read completely, and
      `fall_back` is off (or there is nothing complete to fall back to).
  """
  state_path = os.path.join(model_dir, checkpoints.STATE_FILE)
  on_disk = steps_on_disk(model_dir)
  if not tf.io.gfile.exists(state_path):
    # A kill during the very first save leaves step 0 without a state file;
    # starting over rewrites the same step 0.
    if on_disk in ([], [0]):
      return None
    problem = ("%s holds checkpoints (steps %s) but no %r state file: TF "
               "would start from scratch and overwrite them"
               % (model_dir, sorted(on_disk), checkpoints.STATE_FILE))
    latest, bad_state = None, True
  else:
    state = tf.train.get_checkpoint_state(model_dir)
    if state is None:
      problem = ("state file %s cannot be parsed: TF would ignore it, start "
                 "from scratch and overwrite the run" % state_path)
      latest, bad_state = None, True
    else:
      latest, bad_state = checkpoints.step_of(
          state.model_checkpoint_path), False
      reason = _reason_unusable(model_dir, latest)
      if reason is None:
        return latest
      problem = reason
  candidates = [s for s in on_disk if latest is None or s < latest]
  good = next((s for s in candidates
               if _reason_unusable(model_dir, s) is None), None)
  if not fall_back:
    hint = ("the newest complete one is %s (step %d): rerun with %s=1 or gin "
            "`reliable_train_model.fall_back_to_previous_checkpoint = True` "
            "to resume from it (the damaged files are moved to %s/)"
            % (checkpoints.checkpoint_path(model_dir, good), good,
               FALLBACK_ENV_VAR, QUARANTINE_DIR)
            if good is not None else
            "no earlier checkpoint is complete: restore the files or start "
            "over in a new model dir")
    raise CheckpointError("%s. Nothing was trained or overwritten; %s."
                          % (problem, hint))
  if good is None:
    raise CheckpointError(
        "%s, and no earlier checkpoint in %s is complete to fall back to; "
        "restore the files or start over in a new model dir."
        % (problem, model_dir))
  damaged = [s for s in on_disk if s > good]
  where = _quarantine(model_dir, damaged, bad_state)
  _write_state(model_dir, good, [s for s in on_disk if s <= good])
  logging.warning("%s. As asked, falling back to %s (step %d); moved the "
                  "files of step(s) %s%s to %s.", problem,
                  checkpoints.checkpoint_path(model_dir, good), good, damaged,
                  " and the state file" if bad_state else "", where)
  return good


def run_start_step(model_dir: str) -> Optional[int]:
  """The step recorded by RecordRunStart, or None (not a reliable run)."""
  path = os.path.join(model_dir, RUN_START_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return int(f.read().strip())


class RecordRunStart(tf.train.CheckpointSaverListener):
  """Writes the starting step of a fresh run before its first checkpoint.

  A resumed run must skip the data and replay the random streams of the
  steps since the run started, which is not step 0 when it was initialised
  from a checkpoint. Written before the first checkpoint exists, so every
  resumable model dir has it.
  """

  def __init__(self, model_dir: str):
    self._model_dir = model_dir
    self._recorded = False

  def before_save(self, session, global_step_value):
    del session
    if not self._recorded:
      path = os.path.join(self._model_dir, RUN_START_FILE)
      with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write("%d\n" % global_step_value)
      tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
      self._recorded = True


class ContinueFromSavedState(tf.train.CheckpointSaverListener):
  """After each save, training continues from exactly what was saved."""

  def __init__(self):
    self._copy = []

  def begin(self):
    self._copy = [op for op in tf.get_default_graph().get_operations()
                  if op.name.startswith(_RESTORE_SCOPE)]
    if not self._copy:
      logging.warning(
          "No Mesh TF restore op (%s*) in the graph: the run continues from "
          "its in-memory weights after a save, so a resumed run may differ "
          "from it by the rounding of the saved weights.", _RESTORE_SCOPE)

  def after_save(self, session, global_step_value):
    del global_step_value
    if self._copy:
      session.run(self._copy)
