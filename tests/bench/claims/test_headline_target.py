"""Issue 18's target check and the extrapolated budget, on synthetic curves.

The extrapolation is checked against the closed-form budget of two power
laws with the same b and c: a_s + b (0.6 S)^-c = a_d + b S^-c gives
S = (b (0.6^-c - 1) / (a_d - a_s))^(1/c).
"""

import math

import pytest

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import headline_target as target
from switch_mtf.bench.common import stats

STEPS = range(250, 3001, 250)


def _config(experts):
  """The config name (run name without seed) of Switch with `experts`."""
  return claims_analysis.config_name(
      headline.switch(headline.PROTOCOL, 0, experts).name)


def _curve(a, b, c):
  return {s: a + b * s ** -c for s in STEPS}


def test_power_law_fit_recovers_known_parameters():
  fit = stats.power_law_fit(sorted(_curve(3.5, 40.0, 0.45).items()))
  assert fit["a"] == pytest.approx(3.5, abs=1e-3)
  assert fit["b"] == pytest.approx(40.0, rel=1e-2)
  assert fit["c"] == pytest.approx(0.45, abs=1e-3)
  assert fit["rms"] < 1e-6 and len(fit["residuals"]) == len(STEPS)
  with pytest.raises(ValueError, match="needs >= 4"):
    stats.power_law_fit([(1, 5.0), (2, 4.0), (3, 3.5)])


def test_extrapolated_budget_matches_the_closed_form():
  a_d, a_s, b, c = 3.5, 3.4, 40.0, 0.45
  expected = (b * (0.6 ** -c - 1) / (a_d - a_s)) ** (1 / c)
  assert 3000 < expected < 300000  # beyond the measured budget, in range
  curves = {"dense": _curve(a_d, b, c), "switch_E32": _curve(a_s, b, c)}
  out = target.extrapolate(curves, "dense", 3000)
  answer = out["models"]["switch_E32"]
  assert answer["budget"] == pytest.approx(expected, rel=0.01)
  # At that budget the fitted Switch curve is at dense's final loss by 0.6 S.
  fits = out["fits"]
  assert stats.power_law(fits["switch_E32"], 0.6 * answer["budget"]) == (
      pytest.approx(stats.power_law(fits["dense"], answer["budget"]),
                    abs=1e-4))
  assert out["fit_from_step"] == target.FIT_FROM_STEP
  assert fits["dense"]["steps"][0] == target.FIT_FROM_STEP


def test_no_extrapolation_when_the_fits_do_not_support_it():
  dense = _curve(3.5, 40.0, 0.45)
  curves = {
      "dense": dense,
      # Ahead at the measured budget, but its floor is above dense's.
      "switch_E32": _curve(3.52, 36.0, 0.45),
      # Already meets the target at the measured budget per the fits.
      "switch_E128": _curve(2.5, 40.0, 0.45),
      "switch_E8": _curve(3.0, 40.0, 0.45),  # fewer than 32: not judged
  }
  out = target.extrapolate(curves, "dense", 3000)
  assert set(out["models"]) == {"switch_E32", "switch_E128"}
  assert out["models"]["switch_E32"]["budget"] is None
  assert "floor" in out["models"]["switch_E32"]["reason"]
  assert out["models"]["switch_E128"]["budget"] is None
  assert "measured budget" in out["models"]["switch_E128"]["reason"]
  # Too far: a tiny floor gap puts S beyond 100x the measured budget.
  far = target.extrapolate({"dense": dense,
                            "switch_E32": _curve(3.4999, 40.0, 0.45)},
                           "dense", 3000)
  assert "beyond" in far["models"]["switch_E32"]["reason"]


def _entry(run, final_ce, curve=()):
  points = dict(curve) or {500: final_ce + 1.0, 1500: final_ce + 0.6,
                           3000: final_ce}
  return {"run": run.as_dict(), "eval": {
      str(s): {"neg_log_perplexity": -v} for s, v in points.items()}}


def _store(finals):
  """finals: experts (0 = dense) -> per-seed final CE -> entries."""
  entries = {}
  for experts, values in finals.items():
    for seed, value in enumerate(values):
      run = (headline.dense(headline.PROTOCOL, seed) if not experts else
             headline.switch(headline.PROTOCOL, seed, experts))
      entries[run.name] = _entry(run, value)
  return entries


def _check(entries):
  (runs,) = headline.plan().values()
  result = claims_analysis.sample_efficiency(runs, entries,
                                             headline.dense_config(runs))
  curves = {}
  for config, pairs in claims_analysis.group(runs, entries).items():
    if pairs:
      curves[config] = target.mean_curve(
          [sorted((int(s), -m["neg_log_perplexity"])
                  for s, m in e["eval"].items()) for _, e in pairs])
  return target.check(result, curves, len(headline.SEEDS)), result


def test_target_parts_are_judged_on_every_seed_only():
  # One seed of everything: every part lacks runs.
  check, _ = _check(_store({0: [5.0], 8: [4.9], 32: [4.5], 128: [4.4]}))
  assert check["speedup"]["status"] == target.NOT_ENOUGH
  assert check["difference"]["status"] == target.NOT_ENOUGH
  assert check["ordering"]["status"] == target.NOT_ENOUGH
  assert check["overall"] == target.NOT_ENOUGH


def test_target_met_and_not_met_part_by_part():
  # Each curve: final + 1.0 at step 500, + 0.6 at 1500, final at 3000.
  # E128 ends 0.4 below dense (seed 0): it reaches dense's final 5.0 at
  # step 1500 + 1500 * 0.2/0.6 = 2000, a 1.5x speed-up: not met; its
  # difference is significant (met); the mean CE falls 8 -> 32 -> 128 at
  # every checkpoint (met).
  check, result = _check(_store({0: [5.0, 5.01, 4.99], 8: [4.9, 4.92, 4.91],
                                 32: [4.8, 4.82, 4.79],
                                 128: [4.6, 4.61, 4.6]}))
  speedup = result["configs"][_config(128)]["speedup_val"]
  assert speedup["reached"] == 3
  # Seeds: 3000/2000, 3000/2000, 3000/2025.
  assert speedup["interval"]["mean"] == pytest.approx(
      (1.5 * 1.5 * 3000 / 2025) ** (1 / 3))
  assert check["speedup"]["models"] == {
      _config(32): target.NOT_MET,
      _config(128): target.NOT_MET}
  assert check["speedup"]["status"] == target.NOT_MET
  assert check["difference"]["status"] == target.MET
  assert check["ordering"] == {
      "status": target.MET, "step": 3000, "checkpoints": 3,
      "falling_at": 3, "values": [pytest.approx(4.91), pytest.approx(4.8033,
                                                                     abs=1e-4),
                                  pytest.approx(4.6033, abs=1e-4)]}
  assert check["overall"] == target.NOT_MET
  # E32 not below E8 at the end: the ordering fails.
  check, _ = _check(_store({0: [5.0, 5.0, 5.0], 8: [4.7, 4.7, 4.7],
                            32: [4.8, 4.8, 4.8], 128: [4.6, 4.6, 4.6]}))
  assert check["ordering"]["status"] == target.NOT_MET


def test_a_large_speedup_meets_the_first_part():
  # Switch below dense's final CE at its first checkpoint, step 1500 of
  # dense's 3000, on every seed: 2.0x.
  entries = _store({0: [5.0, 5.02, 4.98]})
  for seed in range(3):
    run = headline.switch(headline.PROTOCOL, seed, 32)
    entries[run.name] = _entry(run, 4.5, [(1500, 4.9), (3000, 4.5)])
  check, _ = _check(entries)
  assert check["speedup"]["models"][_config(32)] == (
      target.MET)
  assert check["speedup"]["status"] == target.MET
  assert math.isclose(check["target_speedup"], 1 / 0.6)
