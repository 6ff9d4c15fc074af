"""The claims' run plan: unique names, order, budgets.

No timings: bookkeeping checked against hand-computed values.
"""

from switch_mtf.bench.claims import plan as claims_plan


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
