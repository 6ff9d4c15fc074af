"""The distillation recipe through the real CLI, checked in its checkpoints.

A tiny Switch teacher is trained, then distilled with distill/pretrain.gin:
the student's first checkpoint must hold the teacher's non-expert tensors,
exactly those and bit for bit, no expert or router variable, and the teacher
must stay frozen while the student trains. A missing teacher checkpoint
must stop the run before training, naming the path and the flag to pass.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.cli import cli_runs

# Two CLI trainings (about 2.5 minutes): in the whole suite (CI, make
# test-all); the fast suite keeps test_distill.py's graph-level checks.
pytestmark = pytest.mark.slow

TEACHER_FLAGS = (
    "--module_import=switch_mtf.tasks",
    "--gin_file=dataset.gin",
    "--gin_file=models/switch_tiny.gin",
    "--gin_file=runs/cpu_tiny.gin",
    "--gin_param=MIXTURE_NAME='smoke_span_corruption'",
    "--gin_param=utils.run.train_steps=10",
)
STEPS = 10


def _distill_flags(teacher_checkpoint):
  return (
      "--module_import=switch_mtf.tasks",
      "--gin_file=dataset.gin",
      "--gin_file=models/switch_tiny.gin",
      "--gin_file=distill/pretrain.gin",
      "--gin_file=runs/cpu_tiny.gin",
      "--gin_param=MIXTURE_NAME='smoke_span_corruption'",
      "--gin_param=utils.run.train_steps=%d" % STEPS,
      "--gin_param=TEACHER_CHECKPOINT='%s'" % teacher_checkpoint,
  )


def _tensors(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name, _ in tf.train.list_variables(prefix)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("distill")
  teacher_dir = str(workdir / "teacher")
  proc = cli_runs.run_cli(teacher_dir, TEACHER_FLAGS, cwd=str(workdir))
  assert proc.returncode == 0, proc.stdout[-4000:]
  student_dir = str(workdir / "student")
  proc = cli_runs.run_cli(student_dir, _distill_flags(teacher_dir),
                          cwd=str(workdir))
  assert proc.returncode == 0, proc.stdout[-4000:]
  return workdir, teacher_dir, student_dir, proc.stdout


def _split(tensors):
  """student/..., teacher/... -> two dicts keyed by the teacher's names."""
  parts = {"student": {}, "teacher": {}}
  for name, value in tensors.items():
    scope, _, rest = name.partition("/")
    if scope in parts:
      parts[scope][rest] = value
  return parts["student"], parts["teacher"]


def test_distillation_trains_with_the_papers_mix(runs):
  _, _, student_dir, log = runs
  assert cli_runs.checkpoint_steps(student_dir) == [0, STEPS]
  assert "Loss for final step" in log
  operative = open(os.path.join(student_dir, "operative_config.gin")).read()
  for line in ("FRACTION_SOFT = 0.25",
               "StudentTeacher.fraction_soft = %FRACTION_SOFT",
               "INIT_STUDENT_FROM_TEACHER = True",
               "StudentTeacher.initialize_student_weights = "
               "%INIT_STUDENT_FROM_TEACHER"):
    assert line in operative, line


def test_student_starts_from_exactly_the_non_expert_weights(runs):
  _, teacher_dir, student_dir, _ = runs
  teacher = _tensors(os.path.join(teacher_dir, "model.ckpt-10"))
  student, _ = _split(_tensors(os.path.join(student_dir, "model.ckpt-0")))

  expert = [n for n in teacher if "/MoE1D/" in n]
  assert any(n.endswith("switch_gating/kernel") for n in expert)
  assert not [n for n in student if "/MoE1D/" in n]

  copied = sorted(n for n in student
                  if n in teacher and np.array_equal(student[n], teacher[n]))
  # Every teacher tensor but the experts, the router and the step counter:
  # embeddings, attention, dense FFNs, layer norms (and their Adafactor
  # statistics, which Mesh TF copies by name too; the first update
  # replaces them, its decay rate at step 0 being 0).
  intended = sorted(set(teacher) - set(expert) - {"global_step"})
  assert copied == intended
  weights = [n for n in intended if "_slot_" not in n]
  for kind in ("shared/embedding", "SelfAttention/q", "EncDecAttention/o",
               "DenseReluDense/wi/kernel", "rms_norm/scale"):
    assert any(kind in n for n in weights), kind

  # The dense FFNs in the experts' places are new and start from scratch.
  fresh = sorted(set(student) - set(teacher))
  assert [n for n in fresh if "_slot_" not in n] == [
      "decoder/block_000/layer_005/DenseReluDense/wi/kernel",
      "decoder/block_000/layer_005/DenseReluDense/wo/kernel",
      "encoder/block_000/layer_003/DenseReluDense/wi/kernel",
      "encoder/block_000/layer_003/DenseReluDense/wo/kernel",
  ]


def test_teacher_is_loaded_and_frozen_while_the_student_learns(runs):
  _, teacher_dir, student_dir, _ = runs
  teacher = _tensors(os.path.join(teacher_dir, "model.ckpt-10"))
  start_student, start_teacher = _split(
      _tensors(os.path.join(student_dir, "model.ckpt-0")))
  end_student, end_teacher = _split(
      _tensors(os.path.join(student_dir, "model.ckpt-%d" % STEPS)))
  weights = [n for n in teacher if n != "global_step" and "_slot_" not in n]
  for name in weights:
    np.testing.assert_array_equal(start_teacher[name], teacher[name], name)
    np.testing.assert_array_equal(end_teacher[name], teacher[name], name)
  moved = [n for n in start_student if "_slot_" not in n and
           not np.array_equal(start_student[n], end_student[n])]
  assert len(moved) == len([n for n in start_student if "_slot_" not in n])


def test_missing_teacher_checkpoint_stops_before_training(runs):
  workdir, _, _, _ = runs
  model_dir = str(workdir / "no_teacher")
  missing = str(workdir / "never_trained")
  os.makedirs(missing)
  proc = cli_runs.run_cli(model_dir, _distill_flags(missing), cwd=str(workdir))
  assert proc.returncode != 0
  assert "DistillationConfigError" in proc.stdout
  assert "Teacher checkpoint %r is a directory without a checkpoint" % (
      missing) in proc.stdout
  assert "--gin_param=\"TEACHER_CHECKPOINT=" in proc.stdout
  assert "step, tf_loss" not in proc.stdout
  assert not os.path.isdir(model_dir) or not cli_runs.checkpoint_steps(
      model_dir)
