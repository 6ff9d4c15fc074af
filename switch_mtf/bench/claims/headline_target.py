"""Issue 18's target, checked on the stored runs, and its extrapolation.

The target: Switch with at least 32 experts reaches dense's final
validation CE in at most 0.6x the steps (a step speed-up of at least
1/0.6), the 95% interval of its paired final-CE difference to dense
excludes 0 (Switch lower), and the loss at equal steps falls 8 -> 32 ->
128 experts. Each part is "met", "not met" or "not enough runs" (fewer
than the protocol's seeds stored): a part is judged on the whole protocol
only.

When the speed-up is not met, `extrapolate` fits L(s) = a + b s^-c to the
seed-mean validation curves of dense and of each Switch model and finds
the smallest budget S (dense's steps) at which the fitted Switch curve
reaches the fitted dense L(S) by 0.6 S. That is an extrapolation of two
fits, not a measurement; it is given only when the fits support it.
"""

import math
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from switch_mtf.bench.common import stats

STEP_FRACTION = 0.6  # Switch's steps / dense's steps, at most
MIN_EXPERTS = 32
ORDER = (8, 32, 128)  # loss at equal steps must fall along these
# Fits start after the first checkpoint: the first few hundred steps are
# the initial transient (Adafactor's statistics warming up), which a
# single power law does not describe.
FIT_FROM_STEP = 500
# Beyond this many times the measured budget the fits say nothing.
MAX_EXTRAPOLATION = 100.0
MET, NOT_MET, NOT_ENOUGH = "met", "not met", "not enough runs"
_EXPERTS = re.compile(r"switch_E(\d+)")


def experts(config: str) -> Optional[int]:
  """A Switch config's expert count (None for dense)."""
  found = _EXPERTS.search(config)
  return int(found.group(1)) if found else None


def target_speedup() -> float:
  return 1.0 / STEP_FRACTION


def _part(statuses: Sequence[str]) -> str:
  """Met if any model meets it; not enough runs if any could still."""
  if MET in statuses:
    return MET
  return NOT_ENOUGH if NOT_ENOUGH in statuses or not statuses else NOT_MET


def check(result: Dict[str, Any], mean_curves: Dict[str, Dict[int, float]],
          seeds: int) -> Dict[str, Any]:
  """The target's parts from a sample_efficiency result.

  result: claims_analysis.sample_efficiency of the headline runs.
  mean_curves: config -> step -> validation CE, mean over its seeds (all
    `seeds` of them, else the config is not judged).
  seeds: the protocol's seeds per model.
  """
  rows = result["configs"]
  speedups, differences = {}, {}
  for config, row in rows.items():
    if config == result["dense"] or (experts(config) or 0) < MIN_EXPERTS:
      continue
    speed = row.get("speedup_val") or {}
    if speed.get("seeds", 0) < seeds:
      speedups[config] = NOT_ENOUGH
    elif speed["reached"] < speed["seeds"]:
      speedups[config] = NOT_MET
    else:
      speedups[config] = (MET if speed["interval"]["mean"]
                          >= target_speedup() else NOT_MET)
    delta = row.get("val_ce_minus_dense") or {}
    if delta.get("n", 0) < seeds:
      differences[config] = NOT_ENOUGH
    else:
      differences[config] = (MET if delta["significant"]
                             and delta["mean"] < 0 else NOT_MET)
  both = [MET if speedups[c] == differences[c] == MET else
          NOT_ENOUGH if NOT_ENOUGH in (speedups[c], differences[c])
          else NOT_MET for c in speedups]
  ordering = _ordering(rows, mean_curves, seeds)
  parts = (_part(both), ordering["status"])
  overall = (NOT_MET if NOT_MET in parts else
             NOT_ENOUGH if NOT_ENOUGH in parts else MET)
  return {"speedup": {"status": _part(list(speedups.values())),
                      "models": speedups},
          "difference": {"status": _part(list(differences.values())),
                         "models": differences},
          "ordering": ordering, "overall": overall,
          "seeds": seeds, "target_speedup": target_speedup()}


def _ordering(rows: Dict[str, Any], mean_curves: Dict[str, Dict[int, float]],
              seeds: int) -> Dict[str, Any]:
  """Whether the seed-mean CE falls 8 -> 32 -> 128 at the final step.

  Also counts the checkpoints (steps all three share) where it falls.
  """
  by_experts = {experts(c): c for c in rows if experts(c) in ORDER}
  configs = [by_experts.get(e) for e in ORDER]
  if None in configs or any(rows[c].get("seeds_done", 0) < seeds
                            for c in configs):
    return {"status": NOT_ENOUGH}
  curves = [mean_curves[c] for c in configs]
  steps = sorted(set.intersection(*(set(c) for c in curves)))
  if not steps:
    return {"status": NOT_ENOUGH}
  falls = [s for s in steps
           if all(a[s] > b[s] for a, b in zip(curves, curves[1:]))]
  final = steps[-1]
  return {"status": MET if final in falls else NOT_MET, "step": final,
          "values": [c[final] for c in curves], "checkpoints": len(steps),
          "falling_at": len(falls)}


def mean_curve(per_seed: Sequence[Sequence[Tuple[int, float]]]
               ) -> Dict[int, float]:
  """step -> mean over the seeds, at the steps every seed evaluated."""
  curves = [dict(c) for c in per_seed if c]
  if not curves:
    return {}
  steps = set.intersection(*(set(c) for c in curves))
  return {s: sum(c[s] for c in curves) / len(curves) for s in sorted(steps)}


def _fit(curve: Dict[int, float]) -> Dict[str, Any]:
  points = [(s, v) for s, v in sorted(curve.items()) if s >= FIT_FROM_STEP]
  fit = stats.power_law_fit(points)
  fit["steps"] = [s for s, _ in points]
  return fit


def budget(dense_fit: Dict[str, Any], switch_fit: Dict[str, Any],
           start: float, stop: float) -> Optional[float]:
  """Smallest S in [start, stop] with L_switch(0.6 S) <= L_dense(S).

  Scanned on a geometric grid (100 points per decade), then bisected to
  a step. None if the fitted curves never get there within the range.
  """
  def gap(s):
    return (stats.power_law(switch_fit, STEP_FRACTION * s)
            - stats.power_law(dense_fit, s))
  previous = start
  if gap(start) <= 0:
    return start
  for k in range(1, int(100 * math.log10(stop / start)) + 2):
    s = min(start * 10 ** (k / 100.0), stop)
    if gap(s) <= 0:
      low, high = previous, s
      while high - low > 1.0:
        middle = (low + high) / 2
        low, high = (low, middle) if gap(middle) <= 0 else (middle, high)
      return high
    previous = s
  return None


def extrapolate(mean_curves: Dict[str, Dict[int, float]], dense: str,
                measured_steps: int) -> Dict[str, Any]:
  """Per Switch config with >= 32 experts: the fits and the budget S.

  Each answer is {"budget": S} or {"budget": None, "reason": why not}:
  a fit fails, Switch's fitted floor is not below dense's (the curves
  then need not meet the target at any budget), the fits already meet
  the target at the measured budget although the measurement does not
  (the fits then misdescribe the curves), or S lies beyond
  MAX_EXTRAPOLATION times the measured budget.
  """
  out: Dict[str, Any] = {"fit_from_step": FIT_FROM_STEP, "models": {}}
  try:
    dense_fit = _fit(mean_curves[dense])
  except (KeyError, ValueError) as e:
    out["reason"] = "dense's curve cannot be fitted (%s)" % e
    return out
  out["fits"] = {dense: dense_fit}
  for config, curve in mean_curves.items():
    if config == dense or (experts(config) or 0) < MIN_EXPERTS:
      continue
    try:
      fit = _fit(curve)
    except ValueError as e:
      out["models"][config] = {"budget": None,
                               "reason": "no fit (%s)" % e}
      continue
    out["fits"][config] = fit
    answer: Dict[str, Any] = {"budget": None}
    stop = MAX_EXTRAPOLATION * measured_steps
    if fit["a"] >= dense_fit["a"]:
      answer["reason"] = ("Switch's fitted floor %.3f is not below dense's "
                          "%.3f" % (fit["a"], dense_fit["a"]))
    else:
      found = budget(dense_fit, fit, measured_steps, stop)
      if found == measured_steps:
        answer["reason"] = ("the fits meet the target at the measured "
                            "budget, the measured curves do not")
      elif found is None:
        answer["reason"] = ("beyond %g times the measured %d steps"
                            % (MAX_EXTRAPOLATION, measured_steps))
      else:
        answer["budget"] = found
    out["models"][config] = answer
  return out


def hours(steps: float, step_ms: Optional[float]) -> Optional[float]:
  """Hours of `steps` training steps at a measured step time."""
  return None if step_ms is None else steps * step_ms / 3.6e6


def grid_hours(steps: float, times: Dict[str, Optional[float]],
               seeds: int) -> Optional[float]:
  """Training hours of the whole grid (every model, every seed) at S."""
  if not times or any(t is None for t in times.values()):
    return None
  return sum(hours(steps, t) for t in times.values()) * seeds


def paired_order_differences(per_seed: Dict[str, Dict[int, float]]
                             ) -> List[Tuple[str, str, Dict[str, Any]]]:
  """(more experts, fewer, paired final-CE difference) along ORDER."""
  by_experts = {experts(c): c for c in per_seed if experts(c) in ORDER}
  out = []
  for fewer, more in zip(ORDER, ORDER[1:]):
    a, b = by_experts.get(more), by_experts.get(fewer)
    if a is None or b is None:
      continue
    seeds = sorted(set(per_seed[a]) & set(per_seed[b]))
    if seeds:
      out.append((a, b, stats.mean_interval(
          [per_seed[a][s] - per_seed[b][s] for s in seeds])))
  return out
