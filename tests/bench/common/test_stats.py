"""The statistics the reports quote, against hand-computed values.

No timings: bookkeeping checked against hand-computed values.
"""

import math

from switch_mtf.bench.common import stats


def test_stats_against_hand_values():
  assert stats.median([3, 1, 2]) == 2
  assert stats.median([4, 1, 3, 2]) == 2.5
  s = stats.spread([1.0, 2.0, 3.0])
  assert s["mean"] == 2.0 and math.isclose(s["std"], 1.0)
  fit = stats.linear_fit([1, 2, 3], [5, 7, 9])
  assert math.isclose(fit["slope"], 2) and math.isclose(fit["intercept"], 3)
  assert math.isclose(fit["r2"], 1.0)
  assert math.isclose(stats.log_log_slope([1, 2, 4], [3, 12, 48]), 2.0)
  assert stats.moving_mean([(1, 1.0), (2, 3.0), (3, 5.0)], 2) == [
      (2, 2.0), (3, 4.0)]


def test_mean_interval_is_students_t():
  got = stats.mean_interval([1.0, 2.0, 3.0])
  # mean 2, std 1, n 3: half-width t(0.975, 2) / sqrt(3) = 4.302653 / 1.732.
  assert math.isclose(got["low"], 2 - 4.302653 / math.sqrt(3), rel_tol=1e-6)
  assert math.isclose(got["high"], 2 + 4.302653 / math.sqrt(3), rel_tol=1e-6)
  assert got["significant"] is False  # contains 0
  assert stats.mean_interval([1.0, 1.1, 1.2])["significant"] is True
  one = stats.mean_interval([0.5])
  assert one["low"] is None and one["significant"] is None


def test_ratio_interval_is_geometric():
  got = stats.ratio_interval([2.0, 8.0])
  assert math.isclose(got["mean"], 4.0)
  # log 2 and log 8: mean log 4, std log(4)/sqrt(2) * ... symmetric in logs.
  assert math.isclose(got["low"] * got["high"], 16.0)
  assert got["significant"] is False  # t(1) is wide: the interval holds 1


def test_first_step_interpolates_and_reports_never():
  curve = [(100, 5.0), (200, 4.0), (300, 3.0)]
  assert stats.first_step_at_or_below(curve, 3.5) == 250.0
  assert stats.first_step_at_or_below(curve, 5.0) == 100.0
  assert stats.first_step_at_or_below(curve, 2.9) is None
