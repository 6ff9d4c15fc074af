"""Reading a claim run's training and evaluation from CLI logs.

No timings: bookkeeping checked against hand-computed values.
"""

import os

import pytest

from switch_mtf.bench.claims import runs as claims_runs


def test_train_log_parsing_counts_steps_and_resumes():
  # The printed global step lags; steps are counted from the checkpoint.
  first = ("INFO:tensorflow:Saving checkpoints for 0 into /m/model.ckpt.\n"
           "step, tf_loss[9.5][1]\nstep, tf_loss[8.0][1]\n"
           "step, tf_loss[7.0][3]\n")
  # Resumed from the step-2 checkpoint: step 3 is redone, then step 4.
  second = ("INFO:tensorflow:Restoring parameters from /m/model.ckpt-2\n"
            "step, tf_loss[6.5][3]\nstep, tf_loss[6.0][3]\n")
  parsed = claims_runs.parse_train_logs([first, second])
  assert parsed["losses"] == {1: 9.5, 2: 8.0, 3: 6.5, 4: 6.0}
  assert not parsed["diverged"]
  assert claims_runs.parse_train_logs(
      [first + "step, tf_loss[nan][4]\n"])["diverged"]
  assert claims_runs.curve(parsed["losses"], 2, 2) == [(2, 8.75), (4, 6.25)]


def test_eval_log_parsing():
  log = ("INFO:tensorflow:Saving dict for global step 250: global_step = 250,"
         " loss = 4.5, neg_log_perplexity = -5.25\n"
         "INFO:tensorflow:eval/local_super_glue_rte/accuracy at step 300: "
         "55.200\n")
  assert claims_runs.parse_eval_log(log) == {
      250: {"global_step": 250.0, "loss": 4.5, "neg_log_perplexity": -5.25},
      300: {"eval/local_super_glue_rte/accuracy": 55.2}}


def test_runs_are_guarded_and_seeded_unless_asked_not_to(tmp_path):
  run = claims_runs.Run(name="r_s2", model_gin="models/t5_tiny.gin", seed=2)
  guarded = claims_runs.Launcher(str(tmp_path)).train_command(run)
  # After the model and recipe gin files, as runs/reliable.gin asks; the
  # data seed binding seeds the guarded run too (reliable.resolve_seed).
  assert guarded.index("--gin_file=runs/reliable.gin") == guarded.index(
      "--gin_file=bench/pretrain_recipe.gin") + 1
  assert "--gin_param=mesh_train_dataset_fn.seed = 1002" in guarded
  unguarded = claims_runs.Launcher(str(tmp_path),
                                   guarded=False).train_command(run)
  assert [f for f in guarded if f != "--gin_file=runs/reliable.gin"] == (
      unguarded)


def test_a_students_command_builds_on_its_teachers_model(tmp_path):
  from switch_mtf.training import distill  # pylint: disable=g-import-not-at-top
  teacher = claims_runs.Run(name="t_s1", model_gin="models/switch_tiny.gin",
                            gin_params=("num_experts = 32",), train_steps=30)
  student = claims_runs.Run(name="s_s1", model_gin="distill/pretrain.gin",
                            gin_params=("FRACTION_SOFT = 1.0",), seed=1,
                            teacher="t_s1",
                            eval_gin_params=("FRACTION_SOFT = 0.0",))
  launcher = claims_runs.Launcher(str(tmp_path))
  train = launcher.train_command(student, teacher=teacher)
  # The distillation gin composes after the teacher's model gin (whose
  # unscoped bindings configure both models), the teacher's bindings before
  # the student's own, the checkpoint under the gin files' macro.
  gin_files = [f for f in train if f.startswith("--gin_file=")]
  assert gin_files[:4] == ["--gin_file=dataset.gin",
                           "--gin_file=models/switch_tiny.gin",
                           "--gin_file=distill/pretrain.gin",
                           "--gin_file=bench/pretrain_recipe.gin"]
  assert claims_runs.TEACHER_MACRO == distill.CHECKPOINT_MACRO
  params = [f for f in train if f.startswith("--gin_param=")]
  assert params[-3:] == [
      "--gin_param=num_experts = 32",
      "--gin_param=TEACHER_CHECKPOINT = '%s'" % os.path.join(
          str(tmp_path), "t_s1", "model.ckpt-30"),
      "--gin_param=FRACTION_SOFT = 1.0"]
  evaluation = launcher.eval_command(student, teacher=teacher)
  assert evaluation[-1] == "--gin_param=FRACTION_SOFT = 0.0"
  assert "--gin_param=FRACTION_SOFT = 0.0" not in train
  # A run that names a teacher cannot be launched without it, nor with
  # another.
  with pytest.raises(ValueError, match="names teacher 't_s1' but was given"):
    launcher.train_command(student)
  with pytest.raises(ValueError, match="names teacher None"):
    launcher.train_command(teacher, teacher=teacher)
