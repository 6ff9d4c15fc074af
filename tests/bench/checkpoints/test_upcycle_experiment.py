"""The upcycling measurement's plan, report, and a few-step run of it all.

The full measurement (3 seeds x 1500 + 1500 steps) is run by the
coordinator on an idle machine (tools/upcycle_experiment.py); here a
4 + 4-step run of one seed goes through every stage with the real CLI:
dense pre-training, upcycling, the three arms, evaluation, the stored
provenance and the report.
"""

import json
import math
import os
import shutil
import statistics

import pytest
from scipy import stats as scipy_stats

from switch_mtf.bench.checkpoints import upcycling
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import store as store_lib
from tests.checkpoints import tool_help


def test_plan_pairs_the_arms_by_seed(tmp_path):
  config = upcycling.Config(seeds=(0, 2), dense_steps=30, extra_steps=20,
                            num_experts=4)
  plans = upcycling.plan(config, str(tmp_path))
  assert [p.dense.name for p in plans] == ["dense_s0", "dense_s2"]
  continued, upcycled, scratch = plans[1].arms
  assert continued.init_from == "dense_s2" and continued.model_gin == (
      config.dense_gin)
  assert upcycled.init_from == "upcycled_init_s2"
  assert upcycled.model_gin == str(tmp_path / "upcycled_init_s2" /
                                   "experiment.gin")
  assert scratch.init_from is None and scratch.gin_params == (
      "num_experts = 4",)
  # The arms share one data stream, not the dense run's.
  assert {a.seed for a in plans[1].arms} == {102}
  assert {a.train_steps for a in plans[1].arms} == {20}
  assert plans[1].upcycled_init.train_steps == 30  # its checkpoint's step
  assert plans[1].upcycled_init.init_from == "dense_s2"


def _store_of(tmp_path, ce):
  """A store holding these final validation CEs (None: not stored)."""
  store = store_lib.ResultStore(str(tmp_path / "runs.json"), "cmd")
  for arm, values in ce.items():
    for seed, value in enumerate(values):
      if value is not None:
        store.put("%s_s%d" % (arm, seed), {"eval": {"100": {
            "neg_log_perplexity": -value}}})
  return store


def test_summary_pairs_seeds_and_reports(tmp_path):
  store = _store_of(tmp_path, {
      "dense": (5.0, 5.1), "dense_continued": (4.8, 4.9),
      "upcycled": (4.6, 4.95), "switch_scratch": (4.9, 4.7)})
  config = upcycling.Config(seeds=(0, 1))
  summary = upcycling.summary(store, config.seeds)
  assert summary["val_ce"]["upcycled"] == {0: 4.6, 1: 4.95}
  assert summary["upcycled_best_in_seeds"] == [0]
  gain = summary["upcycled_gain_over"]["dense_continued"]
  assert gain["n"] == 2 and abs(gain["mean"] - 0.075) < 1e-9
  text = upcycling.report(summary, config, store.commands)
  assert "| upcycled | 4.6000 | 4.9500 |" in text
  assert "beats both other arms in 1 of the 2 seeds with every arm" in text
  assert "    cmd" in text


def test_report_states_the_sign_and_counts_only_scored_seeds(tmp_path):
  # Seed 2 has no dense_continued run yet; scratch - upcycled is 0.19,
  # 0.21, 0.21 (t interval with 2 dof excludes 0); dense_continued -
  # upcycled is -0.01 and -0.04.
  summary = upcycling.summary(_store_of(tmp_path, {
      "dense": (5.0, 5.0, 5.0), "dense_continued": (4.70, 4.75, None),
      "upcycled": (4.71, 4.79, 4.60), "switch_scratch": (4.90, 5.00, 4.81)}), (0, 1, 2))
  text = upcycling.report(summary, upcycling.Config(seeds=(0, 1, 2)), [])
  half = scipy_stats.t.ppf(0.975, 1) * statistics.stdev([-0.01, -0.04]) / (
      math.sqrt(2))
  assert ("upcycled - dense_continued, validation CE: +0.0250, 95%% interval "
          "[%+.4f, %+.4f] (Student's t over 2 paired seeds; not significant)"
          % (0.025 - half, 0.025 + half)) in text
  scratch = [0.19, 0.21, 0.21]
  half = scipy_stats.t.ppf(0.975, 2) * statistics.stdev(scratch) / math.sqrt(3)
  mean = sum(scratch) / 3
  assert ("upcycled - switch_scratch, validation CE: %+.4f, 95%% interval "
          "[%+.4f, %+.4f] (Student's t over 3 paired seeds; significant, "
          "upcycled lower)" % (-mean, -mean - half, -mean + half)) in text
  assert ("beats both other arms in 0 of the 2 seeds with every arm scored "
          "(none); 3 seeds planned.") in text


def test_report_with_one_seed_or_none_paired(tmp_path):
  summary = upcycling.summary(_store_of(tmp_path, {
      "dense": (5.0, None, None), "dense_continued": (4.70, None, None),
      "upcycled": (4.71, None, None), "switch_scratch": (None, 4.9, None)}), (0, 1, 2))
  text = upcycling.report(summary, upcycling.Config(seeds=(0, 1, 2)), [])
  assert ("upcycled - dense_continued, validation CE: +0.0100 (upcycled "
          "higher; 1 seed, no interval)") in text
  assert "upcycled - switch_scratch, validation CE: no paired seeds yet" in (
      text)


def test_a_failed_retraining_of_a_lost_dense_run_upcycles_nothing(
    tmp_path, monkeypatch):
  # A later session: dense_s0 is stored but its model dir is gone, and its
  # retraining is killed. Nothing may upcycle the missing checkpoint.
  config = upcycling.Config(seeds=(0,), dense_steps=4, extra_steps=4)
  work_dir = str(tmp_path / "work")
  seed_plan = upcycling.plan(config, work_dir)[0]
  dense, init = seed_plan.dense, seed_plan.upcycled_init
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  store.put(dense.name, {"run": dense.as_dict()})
  store.put(init.name, {"run": init.as_dict(), "checkpoint": "gone"})
  commands = []

  def killed(self, command, log_path):
    commands.append(command)
    with open(log_path, "w") as f:
      f.write("step, tf_loss[5.0][1]\n")
    return -15, 0.1

  monkeypatch.setattr(claims_runs.Launcher, "execute", killed)
  said = []
  upcycling.run(config, work_dir, store.path, "cmd", log=said.append)
  assert len(commands) == 1 and "--model_dir=%s" % os.path.join(
      work_dir, "dense_s0") in commands[0]
  assert any(m.startswith("claims: FAILED dense_s0") for m in said)
  stored = store_lib.ResultStore(store.path)
  assert stored.get(init.name)["checkpoint"] == "gone"
  assert stored.pending([a.name for a in seed_plan.arms]) == [
      "dense_continued_s0", "upcycled_s0", "switch_scratch_s0"]


def test_a_retrained_dense_run_retrains_the_arms_that_started_from_it(
    tmp_path, monkeypatch):
  # dense_continued_s0 ran from a dense_s0 training whose model dir is
  # gone; the upcycled arm still needs dense_s0, which is trained again.
  # Both arms must then start from that one training.
  config = upcycling.Config(seeds=(0,), dense_steps=4, extra_steps=4)
  work_dir = str(tmp_path / "work")
  seed_plan = upcycling.plan(config, work_dir)[0]
  continued, upcycled, scratch = seed_plan.arms
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  for run in (seed_plan.dense, continued, scratch):
    store.put(run.name, {"run": run.as_dict(), "final_train_loss": 9.0})
  store.put(seed_plan.upcycled_init.name,
            {"run": seed_plan.upcycled_init.as_dict()})
  trained = []

  def train(self, command, log_path):
    model_dir = next(c for c in command if c.startswith("--model_dir="))
    trained.append(os.path.basename(model_dir))
    steps = next(c for c in command if "utils.run.train_steps" in c)
    with open(log_path, "w") as f:
      f.write("step, tf_loss[5.0][1]\n")
    with open(os.path.join(model_dir.split("=", 1)[1], "model.ckpt-%s.index"
                           % steps.split("=")[-1].strip()), "w"):
      pass
    return 0, 0.1

  def fake_upcycle(unused_config, plan, launcher, unused_command):
    os.makedirs(launcher.model_dir(plan.upcycled_init))
    open(launcher.final_checkpoint(plan.upcycled_init) + ".index", "w").close()
    with open(plan.upcycled_init.model_gin, "w") as f:
      f.write("# the upcycled model\n")
    return {"run": plan.upcycled_init.as_dict(), "upcycled": True}

  monkeypatch.setattr(claims_runs.Launcher, "execute", train)
  monkeypatch.setattr(upcycling, "_upcycle", fake_upcycle)
  said = []
  upcycling.run(config, work_dir, store.path, "cmd", log=said.append)
  # Train and evaluate each: dense again, then both arms that start from it.
  assert trained == ["dense_s0"] * 2 + ["dense_continued_s0"] * 2 + [
      "upcycled_s0"] * 2
  assert ("upcycling: dense_continued_s0 started from the earlier training "
          "of dense_s0; training it again") in said
  stored = store_lib.ResultStore(store.path)
  assert stored.get(seed_plan.upcycled_init.name)["upcycled"]
  assert stored.get("switch_scratch_s0")["final_train_loss"] == 9.0
  assert "train_command" in stored.get("dense_continued_s0")  # a new entry


def test_tool_documents_every_flag():
  tool = tool_help.load_tool("upcycle_experiment")
  assert tool_help.undocumented(tool.build_parser()) == []


@pytest.mark.slow
def test_a_few_step_run_goes_through_every_stage(tmp_path):
  tool = tool_help.load_tool("upcycle_experiment")
  results = tmp_path / "results"
  args = ["--seeds=0", "--dense_steps=4", "--extra_steps=4",
          "--checkpoint_every=4", "--perplexity_eval_steps=1",
          "--work_dir=%s" % (tmp_path / "work"), "--results_dir=%s" % results]
  assert tool.main(args) == 0
  stored = json.load(open(results / "runs.json"))
  entries = stored["entries"]
  assert sorted(entries) == ["dense_continued_s0", "dense_s0",
                             "switch_scratch_s0", "upcycled_init_s0",
                             "upcycled_s0"]
  for name in ("dense_s0", "dense_continued_s0", "upcycled_s0",
               "switch_scratch_s0"):
    assert entries[name]["train_exit_code"] == 0, name
    assert entries[name]["final_eval"]["neg_log_perplexity"] < 0, name
    assert entries[name]["provenance"]["code_sha256"], name
  # The continued arms resume the global step of the dense checkpoint.
  assert entries["upcycled_s0"]["final_eval"]["step"] == 8
  assert entries["dense_continued_s0"]["final_eval"]["step"] == 8
  assert entries["switch_scratch_s0"]["final_eval"]["step"] == 4
  # Upcycling t5_tiny gives switch_tiny's architecture.
  assert entries["upcycled_s0"]["params"] == (
      entries["switch_scratch_s0"]["params"])
  assert entries["upcycled_s0"]["params"] > entries["dense_s0"]["params"]
  assert os.path.isfile(tmp_path / "work" / "upcycled_init_s0" /
                        "model.ckpt-4.index")
  summary = (results / "summary.md").read_text()
  assert "| upcycled |" in summary and "Commands:" in summary
  # A later session: the scratch model dirs are gone and one arm is still
  # to run. The dense run is trained again (the same seeds and data) and
  # upcycled again for it; the continued arm, which started from its
  # earlier training, runs again, and the scratch arm is left alone.
  shutil.rmtree(tmp_path / "work")
  store = store_lib.ResultStore(str(results / "runs.json"))
  del store._data["entries"]["upcycled_s0"]  # pylint: disable=protected-access
  store.save()
  assert tool.main(args) == 0
  again = json.load(open(results / "runs.json"))["entries"]
  assert again["upcycled_s0"]["final_eval"]["step"] == 8
  # The same run (flags, seeds, data); its numbers differ a little.
  assert again["dense_s0"]["train_command"] == (
      entries["dense_s0"]["train_command"])
  assert again["dense_s0"]["steps_logged"] == 4
  assert os.path.isfile(tmp_path / "work" / "dense_s0" / "train.0.log")
  assert os.path.isfile(tmp_path / "work" / "upcycled_init_s0" /
                        "model.ckpt-4.index")
  assert again["switch_scratch_s0"] == entries["switch_scratch_s0"]
  assert again["dense_continued_s0"] != entries["dense_continued_s0"]
  assert again["dense_continued_s0"]["final_eval"]["step"] == 8
