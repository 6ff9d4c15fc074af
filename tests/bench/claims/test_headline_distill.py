"""Paper Table 6 on the headline protocol: plan, teacher rule, commands, metric.

Fabricated stores, no training. The fraction of the teacher's gain kept is
checked against the distillation package's own definition
(training/distill.py's fraction_of_gain_kept) and scipy's t quantiles.
"""

import math
import os

import pytest
from scipy import stats as scipy_stats

from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import headline_distill as distill
from switch_mtf.bench.claims import headline_report
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import store as store_lib
from switch_mtf.training import distill as training_distill


def _entry(run, final):
  return {"run": run.as_dict(), "eval": {
      "1500": {"neg_log_perplexity": -(final + 0.3)},
      "3000": {"neg_log_perplexity": -final}}}


def _grid(finals):
  """finals: experts (None = dense) -> per-seed final CE."""
  entries = {}
  for experts, values in finals.items():
    for seed, value in enumerate(values):
      run = (headline.dense(headline.PROTOCOL, seed) if experts is None
             else headline.switch(headline.PROTOCOL, seed, experts))
      entries[run.name] = _entry(run, value)
  return entries


DENSE = [5.0, 5.05, 4.98]


def test_students_are_seed_major_and_paired_with_their_teachers_seed():
  runs = distill.students(128)
  assert len(runs) == len(distill.ROWS) * len(headline.SEEDS)
  assert [r.seed for r in runs] == sorted(r.seed for r in runs)
  assert len({r.name for r in runs}) == len(runs)
  for run in runs:
    assert run.teacher == headline.switch(headline.PROTOCOL, run.seed,
                                          128).name
    assert (run.train_steps, run.checkpoint_every, run.mixture,
            run.recipe_gin) == (headline.PROTOCOL.steps,
                                headline.PROTOCOL.checkpoint_every,
                                headline.MIXTURE, headline.RECIPE_GIN)
  # No student shares a name with a run of the grid (same store).
  grid = {r.name for runs in headline.plan().values() for r in runs}
  assert not grid & {r.name for r in runs}
  assert set(distill.candidate_teachers()) == {
      headline.switch(headline.PROTOCOL, s, e).name
      for s in headline.SEEDS for e in (32, 128)}


def test_student_commands_carry_the_teacher_the_mix_and_the_init(tmp_path):
  launcher = claims_runs.Launcher(str(tmp_path),
                                  perplexity_eval_steps=headline.EVAL_STEPS)
  teacher = headline.switch(headline.PROTOCOL, 1, 32)
  by_row = {r.name: distill.student(headline.PROTOCOL, 1, 32, r)
            for r in distill.ROWS}
  checkpoint = "--gin_param=TEACHER_CHECKPOINT = '%s'" % os.path.join(
      str(tmp_path), teacher.name,
      "model.ckpt-%d" % headline.PROTOCOL.steps)
  expected = {  # row -> (distillation gin, fraction soft, init)
      "distill_soft1": ("distill/pretrain.gin", "1.0", "False"),
      "distill_soft1_init": ("distill/pretrain.gin", "1.0", "True"),
      "distill_soft0.25_init": ("distill/pretrain.gin", "0.25", "True"),
  }
  for name, run in by_row.items():
    train = launcher.train_command(run, teacher=teacher)
    evaluation = launcher.eval_command(run, teacher=teacher)
    assert checkpoint in train
    # The teacher's model and bindings: Switch E32, gather dispatch.
    assert train.index("--gin_file=models/switch_tiny.gin") + 1 == (
        train.index("--gin_file=" + run.model_gin))
    assert "--gin_param=num_experts = 32" in train
    assert "--gin_param=mesh_train_dataset_fn.seed = 1001" in train
    assert "--gin_param=utils.run.train_steps = %d" % (
        headline.PROTOCOL.steps) in train
    if name in expected:
      gin, soft, init = expected[name]
      assert run.model_gin == gin
      assert "--gin_param=FRACTION_SOFT = %s" % soft in train
      assert "--gin_param=INIT_STUDENT_FROM_TEACHER = %s" % init in train
      assert evaluation[-1] == "--gin_param=FRACTION_SOFT = 0.0"
    else:  # init only: the plain dense model from the teacher's weights
      assert run.model_gin == "distill/init_only.gin"
      assert not any("FRACTION_SOFT" in f for f in train + evaluation)
    assert ("--gin_param=utils.run.perplexity_eval_steps = %d"
            % headline.EVAL_STEPS) in evaluation


def test_no_teacher_until_the_grid_is_complete():
  entries = _grid({None: DENSE, 32: [4.8, 4.85, 4.8], 128: [4.7, 4.75]})
  decision = distill.decide(entries)
  assert decision["teacher"] is None
  assert "missing seeds of Switch E128" in decision["reason"]


def test_the_best_candidate_teaches_only_if_clearly_better_than_dense():
  entries = _grid({None: DENSE, 32: [4.8, 4.85, 4.8],
                   128: [4.7, 4.76, 4.69]})
  decision = distill.decide(entries)
  assert decision["teacher"] == 128
  assert decision["means"][128] == pytest.approx((4.7 + 4.76 + 4.69) / 3)
  # Lowest mean, but one seed worse than dense: the interval holds 0.
  entries = _grid({None: DENSE, 32: [4.9, 5.0, 5.0],
                   128: [4.6, 5.1, 5.05]})
  decision = distill.decide(entries)
  assert decision["teacher"] is None
  assert decision["reason"].startswith(
      "Switch E128, the best candidate, is not clearly better than dense")


def test_fraction_of_the_teachers_gain_kept_is_paired_by_seed():
  teacher = [4.7, 4.76, 4.69]
  entries = _grid({None: DENSE, 32: [4.8, 4.85, 4.8], 128: teacher})
  row = distill.ROWS[2]
  student_ce = [4.9, 4.95, 4.9]
  for seed, value in enumerate(student_ce[:2]):  # two seeds stored
    run = distill.student(headline.PROTOCOL, seed, 128, row)
    entries[run.name] = _entry(run, value)
  result = distill.analyze(entries, 128)["rows"][row.name]
  kept = [training_distill.fraction_of_gain_kept(DENSE[s], student_ce[s],
                                                 teacher[s])
          for s in range(2)]
  mean = sum(kept) / 2
  half = scipy_stats.t.ppf(0.975, 1) * abs(kept[0] - kept[1]) / 2
  assert result["kept"]["mean"] == pytest.approx(mean)
  assert result["kept"]["low"] == pytest.approx(mean - half)
  assert result["minus_dense"]["mean"] == pytest.approx(
      (4.9 - 5.0 + 4.95 - 5.05) / 2)
  assert result["final"] == {0: 4.9, 1: 4.95}
  # One seed: no interval, said so in the report.
  del entries[distill.student(headline.PROTOCOL, 1, 128, row).name]
  one = distill.analyze(entries, 128)["rows"][row.name]["kept"]
  assert one["n"] == 1 and one["low"] is None
  assert headline_report._kept(one) == "%.0f%% (n=1, no interval)" % (
      100 * kept[0])
  # A seed where the teacher is not better than dense has no fraction.
  assert distill.fraction_kept(5.0, 4.9, 5.1) is None


def test_the_report_shows_the_refusal_or_the_students(tmp_path):
  speed = tmp_path / "speed"
  store_lib.ResultStore(str(speed / "models.json")).put(headline.speed_key(), {
      "models": {"t5_tiny": {"median_ms": 600.0},
                 "switch_tiny_E32_gather": {"median_ms": 660.0},
                 "switch_tiny_E128_gather": {"median_ms": 900.0}}})
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  for name, entry in _grid({None: DENSE, 32: [4.8, 4.85, 4.8],
                            128: [4.7, 4.75]}).items():
    store.put(name, entry)
  with open(headline_report.write(store, str(tmp_path), str(speed))) as f:
    summary = f.read()
  # E128 lacks a seed: no teacher yet, the rows' estimated minutes:
  # steps x (600 + 660/3) ms with E32, (600 + 900/3) with E128; init only
  # steps x 600 ms.
  minutes = headline.PROTOCOL.steps / 60000.0
  assert "Teacher: not enough runs" in summary
  assert ("| distillation (soft loss only) | -1.631, 3%% | %.0f min | "
          "%.0f min |" % (minutes * 820, minutes * 900)) in summary
  assert ("| init non-expert weights, no distillation | -1.639, – | %.0f min "
          "| %.0f min |" % (minutes * 600, minutes * 600)) in summary
  assert math.isclose(distill.estimated_minutes(
      {"t5_tiny": 600.0, "switch_tiny_E32_gather": 660.0}, 32, distill.ROWS[0]),
                      minutes * 820)
  run = headline.switch(headline.PROTOCOL, 2, 128)
  store.put(run.name, _entry(run, 4.69))
  student = distill.student(headline.PROTOCOL, 0, 128, distill.ROWS[1])
  store.put(student.name, _entry(student, 4.9))
  with open(headline_report.write(store, str(tmp_path), str(speed))) as f:
    summary = f.read()
  assert "Teacher: Switch E128 has the lowest mean final validation CE" in (
      summary)
  assert "| teacher: Switch E128 | -1.444, – | 3 | s0 4.700, s1 4.750, " in (
      summary)
  assert ("| + init non-expert weights | -1.598, 20%% | 1 | s0 4.900 | "
          "-0.100 (1 seed, no interval) | 33%% (n=1, no interval) | "
          "%.0f min |" % (minutes * 900)) in summary
