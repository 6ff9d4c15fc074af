"""Step speed-ups to dense's final loss, with and without the aux loss.

No timings: bookkeeping checked against hand-computed values.
"""

import math

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import runs as claims_runs


def _entry(val, train):
  return {"eval": {str(s): {"neg_log_perplexity": -v} for s, v in val},
          "train_curve_100": train, "final_train_loss": train[-1][1]}


def test_speedup_reached_and_never_reached():
  dense = _entry([(500, 5.0), (1000, 4.0)], [(500, 5.0), (1000, 4.0)])
  better = _entry([(500, 4.5), (1000, 3.8)], [(500, 4.6), (1000, 3.9)])
  worse = _entry([(500, 5.2), (1000, 4.5)], [(500, 5.3), (1000, 4.4)])
  got = claims_analysis.speedup(better, dense, claims_execute.val_curve)
  # 4.5 at 500 -> 3.8 at 1000 crosses 4.0 at 500 + 500 * 0.5/0.7.
  assert math.isclose(got["step_reached"], 500 + 500 * 0.5 / 0.7, abs_tol=0.1)
  assert math.isclose(got["factor"], 1000 / (500 + 500 * 0.5 / 0.7),
                      rel_tol=1e-3)
  got = claims_analysis.speedup(worse, dense, claims_execute.val_curve)
  # Never reaches 4.0: no factor (not a reversed ratio); dense reached
  # Switch's final 4.5 at step 750.
  assert got["step_reached"] is None and got["factor"] is None
  assert got["dense_step_at_switch_final"] == 750


def test_speedup_over_seeds_has_an_interval_only_if_every_seed_reached():
  reached = [{"factor": 1.25}, {"factor": 1.5}, {"factor": 1.2}]
  got = claims_analysis.speedup_over_seeds(reached)
  assert got["seeds"] == 3 and got["reached"] == 3
  mean_log = sum(math.log(f["factor"]) for f in reached) / 3
  assert math.isclose(got["interval"]["mean"], math.exp(mean_log))
  assert got["interval"]["low"] < got["interval"]["mean"] < (
      got["interval"]["high"])
  got = claims_analysis.speedup_over_seeds(
      [{"factor": 1.3}, {"factor": None}, {"factor": None}])
  assert got == {"seeds": 3, "reached": 1}
  assert claims_analysis.speedup_over_seeds([{}, {}]) is None


def _run(name, seed):
  return claims_runs.Run(name="%s_s%d" % (name, seed), model_gin="m.gin",
                         seed=seed)


def test_ablations_are_paired_with_their_baseline_by_seed():
  runs = [_run(n, s) for n in ("base", "knob") for s in (0, 1, 2)]
  ce = {"base": (5.0, 5.2, 5.1), "knob": (4.9, 5.0, 5.0)}
  entries = {r.name: _entry([(500, ce[r.name[:4]][r.seed])], [(500, 5.0)])
             for r in runs}
  got = claims_analysis.by_config(runs, entries, baseline="base")
  delta = got["knob"]["val_ce_minus_baseline"]
  # Paired deltas -0.1, -0.2, -0.1: mean -0.1333, std 0.0577, t(2) 4.3027.
  half = 4.302653 * 0.057735 / math.sqrt(3)
  assert math.isclose(delta["mean"], -0.4 / 3)
  assert math.isclose(delta["high"], -0.4 / 3 + half, rel_tol=1e-4)
  # [-0.277, +0.010]: three seeds this close still cannot exclude 0.
  assert delta["significant"] is False
  assert "val_ce_minus_baseline" not in got["base"]


def test_speedup_without_aux_floor_subtracts_coef_per_moe_layer():
  dense = _entry([(1000, 4.0)], [(500, 4.5), (1000, 4.0)])
  switch = dict(_entry([(1000, 4.0)], [(500, 4.51), (1000, 4.02)]),
                moe_layers=2)
  # Raw: Switch never reaches 4.0; minus the 0.02 floor it reaches it at
  # 4.49 -> 4.00, i.e. step 500 + 500 * 0.49 / 0.49 = 1000.
  assert claims_analysis.speedup(switch, dense,
                                 claims_analysis._train_curve)[
                                     "step_reached"] is None
  got = claims_analysis._speedup_without_aux(switch, dense)
  assert math.isclose(got["step_reached"], 1000.0)
  assert math.isclose(got["factor"], 1.0)
