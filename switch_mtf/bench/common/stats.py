"""The arithmetic every report quotes: medians, spreads, ratios, fits.

Pure Python (and scipy's t quantiles) over lists of floats, so the tests
can check it against hand-computed values without TensorFlow.
"""

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple


def median(values: Sequence[float]) -> float:
  if not values:
    raise ValueError("median of no values; did every timed run fail?")
  ordered = sorted(values)
  middle = len(ordered) // 2
  if len(ordered) % 2:
    return float(ordered[middle])
  return (ordered[middle - 1] + ordered[middle]) / 2.0


def spread(values: Sequence[float]) -> Dict[str, float]:
  """n, mean, sample standard deviation (0 for one value), min and max."""
  if not values:
    raise ValueError("spread of no values")
  n = len(values)
  mean = sum(values) / n
  var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
  return {"n": n, "mean": mean, "std": math.sqrt(var),
          "min": float(min(values)), "max": float(max(values))}


def mean_interval(values: Sequence[float], confidence: float = 0.95
                  ) -> Dict[str, Any]:
  """Mean with its t-based confidence interval (Student's t, n - 1 dof).

  For paired differences over seeds; one value has no interval (low and
  high are None). `significant` is whether the interval excludes 0.
  """
  summary: Dict[str, Any] = dict(spread(values))
  summary["confidence"] = confidence
  if summary["n"] < 2:
    summary.update(low=None, high=None, significant=None)
    return summary
  from scipy import stats as scipy_stats  # pylint: disable=g-import-not-at-top
  half = scipy_stats.t.ppf(0.5 + confidence / 2, summary["n"] - 1) * (
      summary["std"] / math.sqrt(summary["n"]))
  summary.update(low=summary["mean"] - half, high=summary["mean"] + half)
  summary["significant"] = not summary["low"] <= 0.0 <= summary["high"]
  return summary


def ratio_interval(ratios: Sequence[float], confidence: float = 0.95
                   ) -> Dict[str, Any]:
  """Geometric mean of ratios with the interval of their logs, exponentiated.

  `significant` is whether the interval excludes 1.
  """
  logs = mean_interval([math.log(r) for r in ratios], confidence)
  out = {"n": logs["n"], "confidence": confidence,
         "mean": math.exp(logs["mean"]), "min": float(min(ratios)),
         "max": float(max(ratios)), "significant": logs["significant"],
         "low": None if logs["low"] is None else math.exp(logs["low"]),
         "high": None if logs["high"] is None else math.exp(logs["high"])}
  return out


def ratio(numerator: float, denominator: float) -> float:
  if denominator <= 0:
    raise ValueError("ratio with non-positive denominator %r" % denominator)
  return numerator / denominator


def linear_fit(xs: Sequence[float],
               ys: Sequence[float]) -> Dict[str, float]:
  """Least-squares y = slope * x + intercept, with R^2.

  Raises:
    ValueError: fewer than two points, or all x equal.
  """
  if len(xs) != len(ys) or len(xs) < 2:
    raise ValueError("linear_fit needs >= 2 (x, y) pairs, got %d and %d"
                     % (len(xs), len(ys)))
  n = len(xs)
  mx, my = sum(xs) / n, sum(ys) / n
  sxx = sum((x - mx) ** 2 for x in xs)
  if sxx == 0:
    raise ValueError("linear_fit: all x values are equal (%r)" % (xs[0],))
  sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
  slope = sxy / sxx
  intercept = my - slope * mx
  ss_tot = sum((y - my) ** 2 for y in ys)
  ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys))
  r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
  return {"slope": slope, "intercept": intercept, "r2": r2}


def log_log_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
  """Exponent p of y ~ x^p (1 = linear growth, 2 = quadratic)."""
  return linear_fit([math.log(x) for x in xs],
                    [math.log(y) for y in ys])["slope"]


def moving_mean(points: Sequence[Tuple[int, float]],
                window: int) -> List[Tuple[int, float]]:
  """(step, mean of the last `window` values ending at step), step-sorted.

  Points are (step, value); the first window-1 steps are dropped.
  """
  if window < 1:
    raise ValueError("window must be >= 1, got %r" % window)
  ordered = sorted(points)
  out, total = [], 0.0
  for i, (step, value) in enumerate(ordered):
    total += value
    if i >= window:
      total -= ordered[i - window][1]
    if i >= window - 1:
      out.append((step, total / window))
  return out


def first_step_at_or_below(curve: Sequence[Tuple[int, float]],
                           threshold: float) -> Optional[float]:
  """First step where the curve reaches `threshold`, linearly interpolated.

  Between two points the curve is taken as a straight line, so coarse
  curves (validation every few hundred steps) still give a step estimate.
  None if it never gets there.
  """
  ordered = sorted(curve)
  previous = None
  for step, value in ordered:
    if value <= threshold:
      if previous is None or previous[1] == value:
        return float(step)
      s0, v0 = previous
      return s0 + (step - s0) * (v0 - threshold) / (v0 - value)
    previous = (step, value)
  return None


def power_law_fit(points: Sequence[Tuple[float, float]]) -> Dict[str, Any]:
  """Least-squares L(s) = a + b * s^-c to (step, loss) points, b, c > 0.

  A loss curve's usual shape: a floor `a` that more steps approach ever
  more slowly. The floor is bounded by the lowest loss seen (a curve
  still falling is above its floor), c by (0, 5]. Several starting
  exponents are tried and the best fit kept. Returns a, b, c, the
  residuals (measured - fitted, per point) and their root mean square.

  Raises:
    ValueError: fewer than 4 points (3 parameters and one to spare).
  """
  if len(points) < 4:
    raise ValueError("power_law_fit needs >= 4 (step, loss) points to fit "
                     "3 parameters, got %d" % len(points))
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy import optimize  # pylint: disable=g-import-not-at-top
  steps = np.array([p[0] for p in points], dtype=float)
  losses = np.array([p[1] for p in points], dtype=float)
  scale = steps.max()  # fitted in s / scale, so b is of the loss's order
  def model(s, a, b, c):
    return a + b * (s / scale) ** -c
  best = None
  for c0 in (0.25, 0.5, 1.0, 2.0):
    b0 = max(losses.max() - losses.min(), 1e-3)
    a0 = max(losses.min() - b0, 0.0)
    try:
      params, _ = optimize.curve_fit(
          model, steps, losses, p0=(a0, b0, c0),
          bounds=((0.0, 0.0, 1e-3), (losses.min(), np.inf, 5.0)),
          maxfev=20000)
    except (RuntimeError, ValueError):
      continue
    residuals = losses - model(steps, *params)
    rms = float(np.sqrt(np.mean(residuals ** 2)))
    if best is None or rms < best[1]:
      best = (params, rms, residuals)
  if best is None:
    raise ValueError("power_law_fit did not converge on %d points"
                     % len(points))
  (a, b, c), rms, residuals = best
  return {"a": float(a), "b": float(b * scale ** c), "c": float(c),
          "residuals": [float(r) for r in residuals], "rms": rms}


def power_law(fit: Dict[str, Any], step: float) -> float:
  """The fitted loss a + b * step^-c at a step."""
  return fit["a"] + fit["b"] * step ** -fit["c"]
