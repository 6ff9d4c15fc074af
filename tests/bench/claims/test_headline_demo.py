"""The `make demo` setting read off the headline curves (issue 18)."""

import pytest

from switch_mtf.bench.claims import headline_demo as demo

DENSE = {0: [(500, 5.5), (1000, 5.2), (1500, 5.0)],
         1: [(500, 5.6), (1000, 5.25), (1500, 5.05)]}


def _find(curves, step_ms, seeds=2, budget=600.0):
  return demo.find_setting(dict(curves, dense=DENSE), "dense", step_ms,
                           seeds, budget)


def test_picks_the_most_robust_lead_within_the_budget():
  # E8 leads at 1000 on both seeds by 0.05 / 0.01; E32 leads at 500 by
  # 0.1 / 0.2 and at 1000 by 0.15 / 0.25, but 1500 steps of E32 take 15 min
  # at 600 ms, over the 10-minute budget, so its 1.0 lead there is ignored.
  curves = {"e8": {0: [(500, 5.6), (1000, 5.15), (1500, 4.9)],
                   1: [(500, 5.7), (1000, 5.24), (1500, 4.95)]},
            "e32": {0: [(500, 5.4), (1000, 5.05), (1500, 4.0)],
                    1: [(500, 5.4), (1000, 5.0), (1500, 4.0)]}}
  out = _find(curves, {"e8": 380.0, "e32": 600.0, "dense": 370.0})
  assert out["status"] == "found"
  setting = out["setting"]
  assert (setting["config"], setting["steps"]) == ("e32", 1000)
  assert setting["margins"] == pytest.approx([0.15, 0.25])
  assert setting["minutes"] == pytest.approx(10.0)


def test_a_lead_on_all_but_one_seed_does_not_count():
  curves = {"e32": {0: [(500, 5.4), (1000, 5.1), (1500, 4.9)],
                    1: [(500, 5.7), (1000, 5.3), (1500, 5.1)]}}
  out = _find(curves, {"e32": 300.0})
  assert out["status"] == "none" and out["setting"] is None
  assert "10 minutes" in out["reason"]


def test_missing_seeds_or_step_times_decide_nothing():
  curves = {"e32": {0: [(500, 5.4), (1000, 5.1)]}}
  out = _find(curves, {"e32": 300.0})
  assert out["status"] == "not enough runs"
  assert "e32 (seeds missing)" in out["reason"]
  both = {"e32": {0: DENSE[0], 1: DENSE[1]}}
  assert "e32 (no idle step time)" in _find(both, {})["reason"]
  assert _find({}, {}, seeds=3)["reason"] == "dense has 2 of 3 seeds stored"
