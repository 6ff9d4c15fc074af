"""Table 6 students through the real CLI, as the headline_distill part runs them.

A tiny Switch teacher trains first; then two of headline_distill's rows,
at tiny sizes and a few steps, learn from its final checkpoint through
run_all: the soft-loss-only student without init (Mesh TF's
StudentTeacher, scored alone) and the init-only student (a plain dense
model). Each must train, evaluate every checkpoint and be stored; the
fake launcher of test_execute.py only checks the bookkeeping.
"""

import dataclasses
import math

import pytest

from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import headline_distill as distill
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import store as store_lib

TINY = ("utils.run.batch_size = ('sequences_per_batch', 8)",
        "utils.run.sequence_length = {'inputs': 64, 'targets': 16}",
        "Unitransformer.max_length = 64",
        "utils.run.iterations_per_loop = 5")


@pytest.mark.slow
def test_students_train_from_a_teachers_checkpoint_and_are_scored(tmp_path):
  teacher = claims_runs.Run(
      name="teacher_s0", model_gin="models/switch_tiny.gin",
      gin_params=TINY + ("num_experts = 4",
                         "Switch.dispatch_mode = 'gather'"),
      train_steps=10, checkpoint_every=10)
  students = [
      dataclasses.replace(
          distill.student(headline.PROTOCOL, 0, 32, row),
          name="%s_s0" % row.name, teacher=teacher.name,
          gin_params=row.gin_params + TINY, train_steps=10,
          checkpoint_every=5, recipe_gin="bench/pretrain_recipe.gin",
          mixture=claims_runs.PRETRAIN_MIXTURE)
      for row in (distill.ROWS[0], distill.ROWS[3])]
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  launcher = claims_runs.Launcher(str(tmp_path / "work"),
                                  log=lambda message: None,
                                  perplexity_eval_steps=2)
  said = []
  claims_execute.run_all([teacher] + students, store, launcher,
                         log=said.append, keep_checkpoints=False,
                         command="pytest")
  for student in students:
    entry = store.get(student.name)
    assert entry is not None, said
    assert entry["train_exit_code"] == 0 and not entry["diverged"], said
    assert entry["steps_logged"] == 10
    assert sorted(entry["eval"]) == ["10", "5"]
    assert math.isfinite(entry["final_eval"]["neg_log_perplexity"])
    assert "distill/" in " ".join(entry["provenance"]["gin_files"])
  # The teacher's dir stays for its students; theirs are scratch.
  assert (tmp_path / "work" / "teacher_s0" / "model.ckpt-10.index").exists()
  assert not (tmp_path / "work" / students[0].name).exists()
