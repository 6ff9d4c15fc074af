"""The claims' run plan: unique names, order, budgets, stored names.

No timings: bookkeeping checked against hand-computed values.
"""

import json
import os

import pytest

from switch_mtf.analysis import model_stats
from switch_mtf.bench.claims import plan as claims_plan
from switch_mtf.bench.claims import report as claims_report
from switch_mtf.bench.common import store as store_lib
from tests import repo_paths


def test_plan_names_are_unique_and_ordered():
  full = claims_plan.claims(claims_plan.FULL)
  runs = claims_plan.ordered_runs(full)
  names = [r.name for r in runs]
  assert len(names) == len(set(names))
  assert len(full["sample_efficiency"]) == 15  # 5 models x 3 seeds
  assert names[:15] == [r.name for r in sorted(
      full["sample_efficiency"], key=lambda r: r.seed)]
  by_name = {r.name: r for r in runs}
  for i, run in enumerate(runs):  # fine-tuning after its pretraining run
    if run.init_from:
      assert run.init_from in names[:i]
      assert by_name[run.init_from].train_steps == claims_plan.FULL.steps
  for claim in claims_plan.ABLATION_CLAIMS:
    for run in full[claim]:  # shorter ablations never reuse 1500-step runs
      assert run.train_steps == claims_plan.FULL.ablation_steps
      assert run.name.endswith("_%dsteps_s%d" % (run.train_steps, run.seed))
  quick = [r.name for r in claims_plan.ordered_runs(
      claims_plan.claims(claims_plan.QUICK))]
  assert all(n.startswith("quick_") for n in quick) and len(quick) == 5


def _stored_runs():
  """name -> stored Run config, of the committed claim results."""
  stored = {}
  for folder in ("results/claims", "results/next/claims"):
    path = os.path.join(repo_paths.REPO_DIR, folder, "runs.json")
    if os.path.exists(path):
      for name, entry in store_lib.ResultStore(path).items():
        stored[name] = entry["run"]
  return stored


def test_stored_runs_keep_their_names_and_configs():
  # Results are matched by name and config: adding claims must not rename
  # or change any planned run that already ran.
  planned = {r.name: json.loads(json.dumps(r.as_dict()))
             for r in claims_plan.ordered_runs(
                 claims_plan.claims(claims_plan.FULL))}
  stored = _stored_runs()
  assert len(set(stored) & set(planned)) >= 50
  for name, config in stored.items():
    if name in planned:
      assert planned[name] == config, name


def test_appendix_claims_are_three_seeded_ablations_against_the_baseline():
  full = claims_plan.claims(claims_plan.FULL)
  baseline = claims_plan.ablation_baselines(claims_plan.FULL)
  steps = claims_plan.FULL.ablation_steps
  configs = {}
  for claim in claims_plan.APPENDIX_CLAIMS:
    runs = full[claim]
    bfloat16 = claim == "experts_attention_bfloat16"
    assert baseline[claim] == ("switch_E8_bfloat16_100steps" if bfloat16
                               else "switch_E8_500steps")
    names = {r.name for r in runs}
    assert {baseline[claim] + "_s%d" % s for s in range(3)} <= names
    for run in runs:
      assert run.train_steps == (claims_plan.FULL.bfloat16_steps if bfloat16
                                 else steps) and run.seed in (0, 1, 2)
      configs.setdefault(claim, set()).add(run.name[:-len("_s0")])
  assert configs == {
      "router_policy": {"switch_E8_500steps",
                        "switch_E8_policy_argmax_500steps",
                        "switch_E8_policy_sample_500steps",
                        "switch_E8_policy_input_dropout_500steps"},
      "ntlb": {"switch_E8_500steps", "switch_E8_ntlb4_500steps"},
      "priority_dropping": {"switch_E8_500steps", "switch_E8_cf1.0_500steps",
                            "switch_E8_cf1.0_switch_max_500steps"},
      "experts_attention": {"switch_E8_500steps",
                            "switch_E8_attention_500steps"},
      "experts_attention_bfloat16": {"switch_E8_bfloat16_100steps",
                                     "switch_E8_bfloat16_attention_100steps"},
  }
  for claim in claims_plan.APPENDIX_CLAIMS:
    runs = full[claim]
    for run in runs:  # 3 seeds of every config
      assert {r.seed for r in runs
              if r.name[:-3] == run.name[:-3]} == {0, 1, 2}, run.name
  by_name = {r.name: r for r in claims_plan.ordered_runs(full)}
  attention = by_name["switch_E8_bfloat16_attention_100steps_s1"]
  assert attention.model_gin == "models/switch_tiny_attention.gin"
  assert attention.activation_dtype == "bfloat16"
  assert "Switch.router_policy_train = 'sample'" in by_name[
      "switch_E8_policy_sample_500steps_s0"].gin_params
  assert {"Switch.routing = 'switch_max'",
          "Switch.capacity_factor_train = 1.0"} <= set(by_name[
              "switch_E8_cf1.0_switch_max_500steps_s2"].gin_params)


@pytest.mark.parametrize("name", [
    "switch_E8_policy_sample_500steps_s0", "switch_E8_ntlb4_500steps_s0",
    "switch_E8_cf1.0_switch_max_500steps_s0",
    "switch_E8_bfloat16_attention_100steps_s0"])
def test_appendix_configs_build(name):
  """The planned gin files and params make a model (no knob refused)."""
  run = {r.name: r for r in claims_plan.ordered_runs(
      claims_plan.claims(claims_plan.FULL))}[name]
  stats = model_stats.measure(
      [run.model_gin, run.recipe_gin], list(run.gin_params) + [
          "utils.get_variable_dtype.activation_dtype = '%s'"
          % run.activation_dtype])
  assert stats["num_experts"] == 8
  assert stats["moe_layers"] == (4 if "attention" in name else 2)


def _entry(val_ce):
  return {"eval": {"500": {"neg_log_perplexity": -val_ce}},
          "train_curve_100": [[500, val_ce]], "final_train_loss": val_ce}


def test_report_puts_the_papers_numbers_beside_the_paired_differences(
    tmp_path):
  full = claims_plan.claims(claims_plan.FULL)
  plan = {claim: full[claim] for claim in claims_plan.APPENDIX_CLAIMS}
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  for runs in plan.values():
    for run in runs:
      shift = 0.0 if run.name.startswith("switch_E8_500steps") else 0.05
      store.put(run.name, dict(_entry(4.0 + shift + 0.01 * run.seed),
                               run=run.as_dict()))
  path = claims_report.write(plan, store, str(tmp_path),
                             baselines=claims_plan.ablation_baselines(
                                 claims_plan.FULL))
  text = open(path).read()
  for title in ("Router exploration (Table 11)",
                "No-Token-Left-Behind (Appendix B)",
                "Priority dropping at capacity factor 1",
                "Experts in attention (Table 10)"):
    assert "## " + title in text
  assert "- sample: NLP -1.570" in text  # Table 11
  assert "- Experts FF + Attention, float32: NLP -1.513" in text
  assert "- Expert Attention, bfloat16: diverged" in text
  # Every variant is 0.05 worse than the baseline on each seed: a paired
  # difference with a zero-width interval, significant.
  assert "| switch_E8_policy_sample_500steps | 3 | 4.060 ± 0.010 (n=3) | "\
      "+0.050 [+0.050, +0.050], significant (n=3) |" in text
