"""Distilling a Switch teacher into a dense student (paper §4.2) with Mesh TF.

Mesh TF's `transformer.StudentTeacher` (model_type "bi_student_teacher")
computes the paper's loss and loads the teacher, and, with
`initialize_student_weights`, copies every student variable whose name is in
the teacher checkpoint: the non-expert weights of a dense student built on the
teacher's layer stack (the paper's "init non-expert weights"). Mesh TF only
notices a wrong path or shape deep inside the estimator, with a bare TF error;
`CheckpointedTeacher` checks the checkpoint against both models while the
graph is built, before any step runs, and says what to change. It can also
run the teacher in inference mode, so its soft targets are the predictions it
would make at evaluation time (no dropout, router noise or training capacity).
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import gin
import mesh_tensorflow as mtf
from mesh_tensorflow.transformer import transformer
import tensorflow.compat.v1 as tf

STUDENT_SCOPE = "student"
TEACHER_SCOPE = "teacher"
CHECKPOINT_MACRO = "TEACHER_CHECKPOINT"
_TRAIN = tf.estimator.ModeKeys.TRAIN
_EVAL = tf.estimator.ModeKeys.EVAL
# Error messages list at most this many variables, then a count.
_MAX_LISTED = 20

Shapes = Dict[str, Tuple[int, ...]]


class DistillationConfigError(ValueError):
  """The teacher checkpoint cannot serve the configured teacher or student."""


def resolve_checkpoint(path: Optional[str]) -> str:
  """Returns the checkpoint prefix `path` names (a model dir or a prefix).

  Raises:
    DistillationConfigError: no path, or nothing restorable at it.
  """
  how = ("pass --gin_param=\"%s='/path/to/teacher/model_dir'\" (the teacher "
         "run's model_dir, or one checkpoint prefix such as "
         "'.../model.ckpt-1000')" % CHECKPOINT_MACRO)
  if not path:
    raise DistillationConfigError(
        "No teacher checkpoint: distillation needs a trained teacher; " + how
        + ".")
  if tf.io.gfile.isdir(path):
    prefix = tf.train.latest_checkpoint(path)
    if prefix is None:
      raise DistillationConfigError(
          "Teacher checkpoint %r is a directory without a checkpoint (no "
          "'checkpoint' state file naming a model.ckpt-N): train the teacher "
          "there first, or %s." % (path, how))
    return prefix
  if not tf.io.gfile.exists(path + ".index"):
    raise DistillationConfigError(
        "Teacher checkpoint %r not found: it is neither a model_dir nor a "
        "checkpoint prefix (no %s); %s."
        % (path, os.path.basename(path) + ".index", how))
  return path


@gin.configurable(module="switch_mtf")
def checked_teacher_checkpoint(path: Optional[str] = None) -> str:
  """resolve_checkpoint as a gin value: a missing teacher fails at start-up.

  For `utils.run.init_checkpoint`, which Mesh TF would otherwise skip when
  None (training the model from scratch without a word).
  """
  return resolve_checkpoint(path)


def checkpoint_shapes(prefix: str) -> Shapes:
  """Variable name -> shape of every tensor stored in a checkpoint."""
  return {name: tuple(shape)
          for name, shape in tf.train.list_variables(prefix)}


def graph_shapes(graph: mtf.Graph, scope: str) -> Shapes:
  """Checkpoint name -> shape of the mtf variables under `scope/`.

  The student-teacher graph prefixes every variable with its model's scope;
  the teacher's own checkpoint has the same names without it.
  """
  prefix = scope + "/"
  return {v.name[len(prefix):]: tuple(v.shape.to_integer_list)
          for v in graph.all_variables if v.name.startswith(prefix)}


def _listing(lines: Sequence[str]) -> str:
  shown = "\n  ".join(lines[:_MAX_LISTED])
  more = len(lines) - _MAX_LISTED
  return "  " + shown + ("\n  ... and %d more" % more if more > 0 else "")


def student_variables_to_copy(student: Shapes, checkpoint: Shapes,
                              checkpoint_path: str) -> List[str]:
  """Names Mesh TF will copy into the student: those the checkpoint has.

  Raises:
    DistillationConfigError: a shared name has a different shape, which
      `tf.train.init_from_checkpoint` would only report mid-build.
  """
  shared = sorted(set(student) & set(checkpoint))
  mismatched = ["%s: student %s, teacher checkpoint %s"
                % (name, list(student[name]), list(checkpoint[name]))
                for name in shared if student[name] != checkpoint[name]]
  if mismatched:
    raise DistillationConfigError(
        "The student is initialised from the teacher checkpoint %s (every "
        "variable with the same name), but these shapes differ:\n%s\nGive the "
        "student the teacher's dimensions for shared layers (d_model, heads, "
        "d_kv, dense d_ff, vocabulary), or set "
        "StudentTeacher.initialize_student_weights = False "
        "(INIT_STUDENT_FROM_TEACHER = False)."
        % (checkpoint_path, _listing(mismatched)))
  return shared


def check_teacher_matches(teacher: Shapes, checkpoint: Shapes,
                          checkpoint_path: str) -> None:
  """Every teacher variable must be in the checkpoint with its shape.

  Raises:
    DistillationConfigError: naming the variables and both shapes.
  """
  problems = []
  for name in sorted(teacher):
    if name not in checkpoint:
      problems.append("%s: teacher %s, missing from the checkpoint"
                      % (name, list(teacher[name])))
    elif teacher[name] != checkpoint[name]:
      problems.append("%s: teacher %s, checkpoint %s"
                      % (name, list(teacher[name]), list(checkpoint[name])))
  if problems:
    raise DistillationConfigError(
        "The teacher model does not match its checkpoint %s:\n%s\nConfigure "
        "the teacher exactly as the run that wrote the checkpoint (its model "
        "gin file, e.g. models/switch_tiny.gin, and any teacher/ bindings; "
        "see that run's operative_config.gin)."
        % (checkpoint_path, _listing(problems)))


@gin.configurable(module="switch_mtf")
class CheckpointedTeacher(transformer.Bitransformer):
  """A teacher Bitransformer whose weights come from a checkpoint.

  Select it with `teacher/transformer.make_bitransformer.bitransformer_cls`.
  In training it resolves the checkpoint and checks it against the teacher
  and, if the student is initialised from it, the student, before Mesh TF's
  `StudentTeacher.initialize` loads anything.
  """

  def __init__(self, encoder: transformer.Unitransformer,
               decoder: transformer.Unitransformer,
               shared_embedding: bool = True,
               checkpoint: Optional[str] = None,
               student_initialized_from_checkpoint: bool = False,
               inference_mode: bool = True):
    """Records the checkpoint; checks run when the training graph is built.

    Args:
      encoder: as for Bitransformer.
      decoder: as for Bitransformer.
      shared_embedding: as for Bitransformer.
      checkpoint: the teacher's model_dir or checkpoint prefix (the same
        value as `StudentTeacher.teacher_checkpoint`).
      student_initialized_from_checkpoint: the value of
        `StudentTeacher.initialize_student_weights`; checks student shapes.
      inference_mode: compute the soft targets as in evaluation. Mesh TF
        runs the teacher in training mode (dropout, router jitter, training
        capacity factor); the paper does not say which it used.
    """
    super().__init__(encoder, decoder, shared_embedding=shared_embedding)
    self.checkpoint = checkpoint
    self.student_initialized_from_checkpoint = (
        student_initialized_from_checkpoint)
    self.inference_mode = inference_mode

  def call_simple(self, inputs: mtf.Tensor, targets: mtf.Tensor,
                  compute_loss: bool, mode: str = _TRAIN, **kwargs):
    """Bitransformer.call_simple, checked against the checkpoint in TRAIN."""
    if mode != _TRAIN:
      # Evaluation restores the teacher from the distillation model_dir.
      return super().call_simple(inputs, targets, compute_loss, mode=mode,
                                 **kwargs)
    graph = inputs.mesh.graph
    prefix = resolve_checkpoint(self.checkpoint)
    stored = checkpoint_shapes(prefix)
    if self.student_initialized_from_checkpoint:
      copied = student_variables_to_copy(
          graph_shapes(graph, STUDENT_SCOPE), stored, prefix)
      tf.logging.info("Student variables initialised from %s: %d", prefix,
                      len(copied))
    outputs = super().call_simple(
        inputs, targets, compute_loss,
        mode=_EVAL if self.inference_mode else mode, **kwargs)
    check_teacher_matches(graph_shapes(graph, TEACHER_SCOPE), stored, prefix)
    return outputs


def fraction_of_gain_kept(dense_loss: float, student_loss: float,
                          teacher_loss: float) -> Optional[float]:
  """The paper's Table 6-8 metric: share of the teacher's gain the student keeps.

  (dense - student) / (dense - teacher) in loss terms; None when the teacher
  is not better than the dense model, where the ratio means nothing.
  """
  gain = dense_loss - teacher_loss
  if not gain > 0:
    return None
  return (dense_loss - student_loss) / gain

