"""Whether the headline runs hold a setting for `make demo` (issue 18).

Issue 18: if the protocol finds a setting where Switch is ahead of dense on
every seed within about ten minutes of training on this machine, `make
demo` should use it, so that the main job shows the paper's effect and not
only its mechanism. The headline curves answer it without new runs: a
checkpoint step s of a Switch model qualifies when s training steps of
that model take at most the budget at its idle step time (the speed
benchmark's whole step) and its validation CE at s is below dense's at s
for every seed of the protocol. The chosen setting is the qualifying one
with the largest smallest-per-seed margin (the most robust lead).
"""

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

# "About ten minutes of training" per pretrained model.
BUDGET_SECONDS = 600.0

Curve = Sequence[Tuple[int, float]]  # (step, validation CE), sorted


def find_setting(curves: Mapping[str, Mapping[int, Curve]], dense: str,
                 step_ms: Mapping[str, Optional[float]], seeds: int,
                 budget_seconds: float = BUDGET_SECONDS) -> Dict[str, Any]:
  """The demo setting the stored curves support, or why there is none.

  Args:
    curves: config -> seed -> validation curve, for the stored runs.
    dense: the dense config's name.
    step_ms: config -> idle whole-step time in ms (None: not measured).
    seeds: the protocol's seed count; fewer stored decides nothing.
    budget_seconds: the training time a model may take.

  Returns:
    {"status": "found" | "none" | "not enough runs", "reason": str,
     "setting": {"config", "steps", "minutes", "margins"} or None}.
  """
  dense_curves = curves.get(dense, {})
  if len(dense_curves) < seeds:
    return _result("not enough runs", "dense has %d of %d seeds stored"
                   % (len(dense_curves), seeds))
  candidates, unmeasured, short = [], [], []
  for config, per_seed in curves.items():
    if config == dense:
      continue
    paired = sorted(set(per_seed) & set(dense_curves))
    if len(paired) < seeds:
      short.append(config)
      continue
    ms = step_ms.get(config)
    if ms is None:
      unmeasured.append(config)
      continue
    for step in _common_steps([per_seed[s] for s in paired] +
                              [dense_curves[s] for s in paired]):
      if step * ms / 1000.0 > budget_seconds:
        continue
      margins = [dict(dense_curves[s])[step] - dict(per_seed[s])[step]
                 for s in paired]
      if min(margins) > 0:
        candidates.append({"config": config, "steps": step,
                           "minutes": step * ms / 60000.0,
                           "margins": margins})
  if candidates:
    best = max(candidates, key=lambda c: (min(c["margins"]), -c["steps"]))
    return dict(_result("found", "Switch ahead of dense on every seed at "
                        "this checkpoint, within the budget"), setting=best)
  missing = ["%s (seeds missing)" % c for c in short] + [
      "%s (no idle step time)" % c for c in unmeasured]
  if missing:
    return _result("not enough runs", "not judged: " + ", ".join(missing))
  return _result("none", "no Switch checkpoint within %.0f minutes of "
                 "training is ahead of dense on every seed"
                 % (budget_seconds / 60.0))


def _common_steps(curves: Sequence[Curve]) -> Sequence[int]:
  steps = set(step for step, _ in curves[0])
  for curve in curves[1:]:
    steps &= set(step for step, _ in curve)
  return sorted(steps)


def _result(status: str, reason: str) -> Dict[str, Any]:
  return {"status": status, "reason": reason, "setting": None}
