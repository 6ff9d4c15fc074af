"""Running the claims resumably: skips, stale reruns, parallel jobs.

No timings: bookkeeping checked against hand-computed values.
"""

import json
import os
import shlex
import time

import pytest

from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import store as store_lib


class _FakeLauncher(claims_runs.Launcher):
  """Writes a synthetic CLI log instead of running the CLI."""

  def __init__(self, work_dir, seconds=0.0):
    super().__init__(work_dir, log=lambda message: None)
    self.commands = []
    self.seconds = seconds  # how long each fake process "runs"

  def execute(self, command, log_path):
    self.commands.append(command)
    time.sleep(self.seconds)
    with open(log_path, "w") as f:
      if "--gin_file=perplexity_eval.gin" in command:
        f.write("INFO:tensorflow:Saving dict for global step 4: "
                "neg_log_perplexity = -5.5\n")
      else:
        f.write("INFO:tensorflow:Saving checkpoints for 0 into m.\n")
        f.write("".join("step, tf_loss[%g][%d]\n" % (9 - i, i)
                        for i in range(1, 5)))
        # The final checkpoint's index file, as the CLI leaves it.
        steps = next(c for c in command if "utils.run.train_steps" in c)
        model_dir = next(c for c in command if c.startswith("--model_dir="))
        with open(os.path.join(model_dir.split("=", 1)[1], "model.ckpt-%s"
                               ".index" % steps.split("=")[-1].strip()),
                  "w"):
          pass
    return 0, 0.1


def _started_after(launcher, later, earlier):
  """Whether `later`'s first process came after all of `earlier`'s."""
  dirs = [next(c for c in command if c.startswith("--model_dir="))
          for command in launcher.commands]
  return dirs.index("--model_dir=" + launcher.model_dir(later)) > max(
      i for i, d in enumerate(dirs)
      if d == "--model_dir=" + launcher.model_dir(earlier))


def test_run_all_skips_finished_runs_and_reruns_stale_ones(tmp_path):
  runs = [claims_runs.Run(name="a_s0", model_gin="models/t5_tiny.gin",
                          gin_params=("num_experts = 8",), train_steps=4),
          claims_runs.Run(name="b_s0", model_gin="models/t5_tiny.gin",
                          train_steps=4)]
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  done = {"run": runs[0].as_dict(), "final_train_loss": 1.0}
  store.put("a_s0", done)
  store = store_lib.ResultStore(store.path)  # as reloaded by a later call
  # b's stored entry is stale: it ran with another step count.
  store.put("b_s0", {"run": dict(runs[1].as_dict(), train_steps=9)})
  launcher = _FakeLauncher(str(tmp_path / "work"))
  claims_execute.run_all(runs, store, launcher, log=lambda message: None,
                         keep_checkpoints=False)
  # Only b trained and evaluated; a's entry is untouched.
  assert [c[1] for c in launcher.commands] == [
      "--model_dir=" + launcher.model_dir(runs[1])] * 2
  assert store.get("a_s0")["final_train_loss"] == 1.0
  entry = store.get("b_s0")
  assert entry["steps_logged"] == 4 and not entry["diverged"]
  assert entry["final_eval"] == {"neg_log_perplexity": -5.5, "step": 4}
  assert "--gin_param=utils.run.train_steps = 4" in entry["train_command"]
  # Its scratch model directory is gone (no later run starts from it).
  assert not (tmp_path / "work" / "b_s0").exists()


def _pretrain_and_finetune():
  """p_s0 and f_s0, which starts from p_s0's last checkpoint."""
  pretrain = claims_runs.Run(name="p_s0", model_gin="models/t5_tiny.gin",
                             train_steps=4)
  finetune = claims_runs.Run(name="f_s0", model_gin="models/t5_tiny.gin",
                             train_steps=4, init_from="p_s0",
                             eval_kind="none")
  return pretrain, finetune


def test_run_all_two_jobs_stores_every_run_and_fine_tunes_after_pretraining(
    tmp_path):
  pretrain, finetune = _pretrain_and_finetune()
  other = claims_runs.Run(name="o_s0", model_gin="models/t5_tiny.gin",
                          train_steps=4, eval_kind="none")
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  launcher = _FakeLauncher(str(tmp_path / "work"), seconds=0.2)
  claims_execute.run_all([pretrain, finetune, other], store, launcher,
                         log=lambda message: None, keep_checkpoints=False,
                         jobs=2)
  assert all(store.done(r.name) for r in (pretrain, finetune, other))
  reloaded = store_lib.ResultStore(store.path)
  assert sorted(name for name, _ in reloaded.items()) == [
      "f_s0", "o_s0", "p_s0"]
  # Both of the pretraining run's processes (train, eval) came first.
  assert _started_after(launcher, finetune, pretrain)
  assert "init_checkpoint" in store.get("f_s0")["train_command"]


def _retrain_message(run, checkpoint, dependents):
  return ("claims: %s is stored, but its checkpoint %s is gone; training it "
          "again (same config and seed) for the runs that start from or "
          "learn from it: %s; its stored entry is replaced by the new run's"
          % (run, checkpoint, dependents))


def test_a_stored_run_whose_checkpoint_is_gone_is_trained_again_if_needed(
    tmp_path):
  # Model dirs are scratch: a later session has the pretraining run's entry
  # but not its checkpoint, and a fine-tuning run still to come needs it.
  pretrain, finetune = _pretrain_and_finetune()
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  launcher = _FakeLauncher(str(tmp_path / "work"))
  quiet = lambda message: None
  claims_execute.run_all([pretrain], store, launcher, log=quiet,
                         keep_checkpoints=False)
  checkpoint = os.path.join(launcher.model_dir(pretrain), "model.ckpt-4")
  assert store.done("p_s0") and not os.path.exists(checkpoint + ".index")
  store.put("p_s0", dict(store.get("p_s0"), final_train_loss="lost run"))
  # Only the fine-tuning run asked for (`--runs=f_s0`): the pretraining
  # run is trained again first (train and eval), replacing its entry.
  said = []
  claims_execute.run_all([finetune], store, launcher, log=said.append,
                         plan_runs=[pretrain], keep_checkpoints=False)
  assert said[0] == _retrain_message("p_s0", checkpoint, "f_s0")
  assert [c[1] for c in launcher.commands[2:]] == [
      "--model_dir=" + launcher.model_dir(pretrain)] * 2 + [
          "--model_dir=" + launcher.model_dir(finetune)]
  assert store.done("f_s0") and os.path.exists(checkpoint + ".index")
  assert store.get("p_s0")["final_train_loss"] != "lost run"
  # Nothing left that starts from it: a missing checkpoint is no reason.
  os.remove(checkpoint + ".index")
  claims_execute.run_all([pretrain, finetune], store, launcher, log=quiet)
  assert len(launcher.commands) == 5


def test_a_lost_run_stored_with_another_config_starts_afresh(tmp_path):
  # Both lost (checkpoint gone) and stored with other flags: it used to be
  # trained "again (same config and seed)" in its old model dir, whose
  # training log then counted as the new run's first attempt.
  pretrain, finetune = _pretrain_and_finetune()
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  store.put("p_s0", {"run": dict(pretrain.as_dict(), train_steps=9)})
  launcher = _FakeLauncher(str(tmp_path / "work"))
  old_dir = launcher.model_dir(pretrain)
  os.makedirs(old_dir)
  with open(os.path.join(old_dir, "train.0.log"), "w") as f:
    f.write("".join("step, tf_loss[1][%d]\n" % i for i in range(1, 10)))
  said = []
  claims_execute.run_all([finetune], store, launcher, log=said.append,
                         plan_runs=[pretrain], keep_checkpoints=False)
  assert said[0] == (
      "claims: p_s0 was stored with another config; running it again (its "
      "checkpoint %s is gone too)" % os.path.join(old_dir, "model.ckpt-4"))
  assert not any("same config and seed" in line for line in said)
  assert store.get("p_s0")["run"] == json.loads(json.dumps(
      pretrain.as_dict()))
  assert store.get("p_s0")["steps_logged"] == 4  # its own log only
  assert sorted(f for f in os.listdir(old_dir) if f.startswith("train.")) \
      == ["train.0.log"]
  assert store.done("f_s0")


def test_a_stale_run_is_trained_again_from_scratch_with_rerun_stale(
    tmp_path, monkeypatch):
  from switch_mtf.bench.common import provenance  # pylint: disable=g-import-not-at-top
  run = claims_runs.Run(name="a_s0", model_gin="models/t5_tiny.gin",
                        train_steps=4)
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  launcher = _FakeLauncher(str(tmp_path / "work"))
  claims_execute.run_all([run], store, launcher, log=lambda message: None)
  monkeypatch.setattr(provenance, "stale_reasons",
                      lambda stored: ["code changed"])
  said = []
  claims_execute.run_all([run], store, launcher, log=said.append)
  assert said == ["claims: a_s0 is STALE (code changed); kept and marked "
                  "stale in the report (--rerun_stale measures it again)",
                  "claims: a_s0 done, skipped"]
  said = []
  claims_execute.run_all([run], store, launcher, log=said.append,
                         rerun_stale=True)
  assert said[0] == "claims: a_s0 is STALE (code changed); measuring it again"
  assert len(launcher.commands) == 4
  # The old run's checkpoints and logs were removed, not resumed.
  assert os.listdir(launcher.model_dir(run)).count("train.0.log") == 1
  assert "train.1.log" not in os.listdir(launcher.model_dir(run))


def test_provenance_is_the_code_at_the_start_of_training(tmp_path,
                                                         monkeypatch):
  # The code may change while a run trains for hours; the entry must
  # describe what the CLI process loaded, so that it is then stale.
  from switch_mtf.bench.common import provenance  # pylint: disable=g-import-not-at-top
  launcher = _FakeLauncher(str(tmp_path))
  monkeypatch.setattr(provenance, "code_hash", lambda parts: (
      "hash after training" if launcher.commands else "hash at start"))
  run = claims_runs.Run(name="a_s0", model_gin="models/t5_tiny.gin",
                        train_steps=4)
  entry = claims_execute.execute(run, launcher)
  assert entry["provenance"]["code_sha256"] == "hash at start"


def test_stored_entries_from_before_the_teacher_field_still_count_as_done(
    tmp_path):
  # The committed pilot was stored before Run had teacher and
  # eval_gin_params: the same run planned today must match it and be
  # skipped, not trained again.
  from tests import repo_paths  # pylint: disable=g-import-not-at-top
  with open(os.path.join(repo_paths.REPO_DIR, "results", "headline",
                         "pilots.json")) as f:
    name, stored = next(iter(json.load(f)["entries"].items()))
  assert "teacher" not in stored["run"]
  run = claims_runs.Run(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in stored["run"].items()})
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  store.put(name, stored)
  launcher = _FakeLauncher(str(tmp_path / "work"))
  said = []
  claims_execute.run_all([run], store, launcher, log=said.append)
  assert launcher.commands == []
  assert said[-1] == "claims: %s done, skipped" % name
  # A teacher (or evaluation bindings) is part of the stored config.
  student = claims_runs.Run(name="s_s0", model_gin="distill/pretrain.gin",
                            teacher=name, eval_gin_params=("X = 1",))
  assert student.as_dict()["teacher"] == name
  assert student.as_dict()["eval_gin_params"] == ("X = 1",)


def _student(teacher, **kwargs):
  return claims_runs.Run(name="student_s0", model_gin="distill/pretrain.gin",
                         gin_params=("FRACTION_SOFT = 0.25",), train_steps=4,
                         teacher=teacher.name,
                         eval_gin_params=("FRACTION_SOFT = 0.0",), **kwargs)


def test_a_student_waits_for_its_teacher_whose_model_dir_is_kept(tmp_path):
  teacher = claims_runs.Run(name="teacher_s0",
                            model_gin="models/switch_tiny.gin",
                            gin_params=("num_experts = 4",), train_steps=4)
  other = claims_runs.Run(name="other_s0", model_gin="models/t5_tiny.gin",
                          train_steps=4)
  student = _student(teacher)
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  launcher = _FakeLauncher(str(tmp_path / "work"), seconds=0.2)
  # Two at a time: the student's job waits for its teacher's.
  claims_execute.run_all([teacher, student, other], store, launcher,
                         log=lambda message: None, keep_checkpoints=False,
                         jobs=2, keep=("other_s0",))
  assert _started_after(launcher, student, teacher)
  # The teacher's dir is kept for its students, other_s0's as asked.
  assert os.path.isdir(launcher.model_dir(teacher))
  assert os.path.isdir(launcher.model_dir(other))
  assert not os.path.isdir(launcher.model_dir(student))
  checkpoint = os.path.join(launcher.model_dir(teacher), "model.ckpt-4")
  entry = store.get("student_s0")
  train = shlex.split(entry["train_command"])
  assert "--gin_param=TEACHER_CHECKPOINT = '%s'" % checkpoint in train
  # The student is scored alone: the evaluation's bindings come last.
  assert shlex.split(entry["eval_command"])[-1] == (
      "--gin_param=FRACTION_SOFT = 0.0")


class _FailingLauncher(_FakeLauncher):
  """Every process of the runs named in `failing` exits with 1."""

  def __init__(self, work_dir, failing):
    super().__init__(work_dir)
    self.failing = failing

  def execute(self, command, log_path):
    if any(c == "--model_dir=" + self.model_dir(r) for r in self.failing
           for c in command):
      self.commands.append(command)
      with open(log_path, "w") as f:
        f.write("Killed\n")
      return 1, 0.1
    return super().execute(command, log_path)


def test_a_student_whose_teacher_checkpoint_is_missing_retrains_it_first(
    tmp_path):
  # `--parts=headline_distill` on a new machine: the students are the only
  # runs asked for, and their teacher's model dir stayed on the old
  # machine (here the teacher itself learned from a lost teacher).
  pretrain = claims_runs.Run(name="p_s0", model_gin="models/switch_tiny.gin",
                             train_steps=4)
  teacher = claims_runs.Run(name="teacher_s0",
                            model_gin="distill/pretrain.gin", train_steps=4,
                            teacher="p_s0")
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  for run in (pretrain, teacher):
    store.put(run.name, {"run": run.as_dict()})  # stored elsewhere
  launcher = _FakeLauncher(str(tmp_path / "work"))
  said = []
  claims_execute.run_all([_student(teacher)], store, launcher,
                         log=said.append, plan_runs=[pretrain, teacher],
                         keep_checkpoints=False)
  dirs = [next(c for c in command if c.startswith("--model_dir="))
          for command in launcher.commands]
  assert dirs == ["--model_dir=" + launcher.model_dir(r) for r in (
      pretrain, pretrain, teacher, teacher, _student(teacher),
      _student(teacher))]
  assert said[0] == _retrain_message("p_s0", os.path.join(
      launcher.model_dir(pretrain), "model.ckpt-4"), "teacher_s0")
  assert _retrain_message("teacher_s0", os.path.join(
      launcher.model_dir(teacher), "model.ckpt-4"), "student_s0") in said
  assert store.done("student_s0")
  assert store.get("teacher_s0")["final_eval"]["neg_log_perplexity"] == -5.5
  assert os.path.isdir(launcher.model_dir(teacher))  # kept for students


def test_a_student_whose_teacher_cannot_be_trained_again_is_skipped(
    tmp_path):
  teacher = claims_runs.Run(name="teacher_s0",
                            model_gin="models/switch_tiny.gin", train_steps=4)
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  store.put(teacher.name, {"run": teacher.as_dict()})  # stored elsewhere
  launcher = _FailingLauncher(str(tmp_path / "work"), [teacher])
  said = []
  claims_execute.run_all([_student(teacher)], store, launcher,
                         log=said.append, plan_runs=[teacher])
  assert len(launcher.commands) == 1 and not store.done("student_s0")
  assert store.get(teacher.name) == {"run": json.loads(json.dumps(
      teacher.as_dict()))}  # its entry stays
  assert said[-1] == (
      "claims: student_s0 skipped: its teacher's checkpoint %s "
      "is missing (model dirs are scratch, not results: copy "
      "teacher_s0's model dir from the machine that trained it, "
      "or train it again)" % os.path.join(launcher.model_dir(teacher),
                                          "model.ckpt-4"))
  # Not planned at all: a planning error before any work.
  with pytest.raises(ValueError, match="learns from teacher_s0, which is "
                     "not planned"):
    claims_execute.run_all([_student(teacher)], store, launcher,
                           log=said.append)
