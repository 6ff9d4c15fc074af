"""From stored runs to the numbers each claim reports.

Quality is the validation cross-entropy per target token at the last
checkpoint (CE = -neg_log_perplexity of the CLI's perplexity eval);
training loss is the CLI's total loss (CE over padded target slots + z-loss
+ aux losses), averaged over the last 100 steps. Seeds of a config are runs
whose names differ only in the `_s<seed>` suffix; seed s of a Switch run
shares its data order with seed s of the dense run, so differences are
paired by seed, with 95% t-intervals over seeds (stats.mean_interval).
"""

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import stats

SEED_SUFFIX = re.compile(r"_s(\d+)$")
LOSS_COEF = 0.01  # Switch.loss_coef of every planned run (paper alpha)


def config_name(run_name: str) -> str:
  return SEED_SUFFIX.sub("", run_name)


def group(runs: Sequence[claims_runs.Run], entries: Dict[str, Any]
          ) -> Dict[str, List[Tuple[claims_runs.Run, Dict[str, Any]]]]:
  """config -> [(run, entry)] of the finished runs, configs in plan order."""
  out: Dict[str, List[Tuple[claims_runs.Run, Dict[str, Any]]]] = {}
  for run in runs:
    out.setdefault(config_name(run.name), [])
    if entries.get(run.name):
      out[config_name(run.name)].append((run, entries[run.name]))
  return out


def final_val_ce(entry: Dict[str, Any]) -> Optional[float]:
  curve = claims_execute.val_curve(entry)
  return curve[-1][1] if curve else None


def summarize(pairs: Sequence[Tuple[claims_runs.Run, Dict[str, Any]]]
              ) -> Dict[str, Any]:
  """Spread over seeds of quality, training loss, speed and routing."""
  def collect(fn):
    return [v for v in (fn(e) for _, e in pairs) if v is not None]
  out: Dict[str, Any] = {
      "seeds_done": len(pairs),
      "diverged": sum(1 for _, e in pairs if e.get("diverged")),
  }
  for key, fn in (
      ("val_ce", final_val_ce),
      ("final_train_loss", lambda e: e.get("final_train_loss")),
      ("steps_per_sec", lambda e: e.get("steps_per_sec")),
      ("tokens_dropped_fraction", _late_dropped_fraction)):
    values = collect(fn)
    if values:
      out[key] = stats.spread(values)
  return out


def _late_dropped_fraction(entry: Dict[str, Any]) -> Optional[float]:
  """Mean dropped fraction over the second half of training (Switch only)."""
  points = entry.get("tokens_dropped_fraction") or []
  if not points:
    return None
  last = points[-1][0]
  late = [v for s, v in points if s >= last / 2]
  return sum(late) / len(late)


def speedup(switch_entry: Dict[str, Any], dense_entry: Dict[str, Any],
            curve_fn) -> Dict[str, Any]:
  """Steps for Switch to reach dense's final value, as a speed-up factor.

  factor = dense steps / first step where Switch's curve <= dense's final
  value (linear interpolation between points). If Switch never gets there
  the factor is None ("not reached"), never a reversed ratio; the step
  where dense reached Switch's final value is kept for the record.
  """
  dense_curve, switch_curve = curve_fn(dense_entry), curve_fn(switch_entry)
  if not dense_curve or not switch_curve:
    return {}
  dense_steps, dense_final = dense_curve[-1]
  reach = stats.first_step_at_or_below(switch_curve, dense_final)
  if reach is not None and reach > 0:
    return {"dense_final": dense_final, "step_reached": round(reach, 1),
            "factor": dense_steps / reach}
  dense_reach = stats.first_step_at_or_below(dense_curve, switch_curve[-1][1])
  return {"dense_final": dense_final, "step_reached": None, "factor": None,
          "dense_step_at_switch_final": dense_reach}


def speedup_over_seeds(per_seed: Sequence[Dict[str, Any]]
                       ) -> Optional[Dict[str, Any]]:
  """How many seeds reached dense's final value, and the speed-up if all did.

  The interval (geometric mean, t-interval of the log factors) is given
  only when every seed reached it: a seed that did not has no factor, and
  leaving it out would flatter the mean.
  """
  computed = [p for p in per_seed if p]
  if not computed:
    return None
  factors = [p["factor"] for p in computed if p.get("factor")]
  out: Dict[str, Any] = {"seeds": len(computed), "reached": len(factors)}
  if factors and len(factors) == len(computed):
    out["interval"] = stats.ratio_interval(factors)
  return out


def _train_curve(entry):
  return [tuple(p) for p in entry.get("train_curve_100", [])]


def _train_curve_without_aux(entry):
  """Training loss minus the aux loss's floor: loss_coef x MoE layers.

  The load-balancing loss is >= 1 per layer (1 = perfectly balanced), so
  0.01 x layers is the least it adds; Switch's CE is at most this curve.
  """
  floor = LOSS_COEF * entry.get("moe_layers", 0)
  return [(s, v - floor) for s, v in _train_curve(entry)]


def _speedup_without_aux(switch_entry, dense_entry):
  return speedup({"train_curve_100": _train_curve_without_aux(switch_entry)},
                 dense_entry, _train_curve)


def sample_efficiency(runs: Sequence[claims_runs.Run],
                      entries: Dict[str, Any],
                      dense_config: Optional[str] = None) -> Dict[str, Any]:
  """Each config against the dense one (default: the config named *dense)."""
  groups = group(runs, entries)
  dense_name = dense_config or next(c for c in groups if c.endswith("dense"))
  dense_by_seed = {r.seed: e for r, e in groups[dense_name]}
  rows = {}
  for config, pairs in groups.items():
    row = summarize(pairs)
    row["params_note"] = config
    if config != dense_name:
      per_seed = []
      for run, entry in pairs:
        dense_entry = dense_by_seed.get(run.seed)
        if dense_entry is None:
          continue
        per_seed.append({
            "seed": run.seed,
            "val": speedup(entry, dense_entry, claims_execute.val_curve),
            "train": speedup(entry, dense_entry, _train_curve),
            "train_without_aux": _speedup_without_aux(entry, dense_entry)})
      row["speedup_per_seed"] = per_seed
      for basis in ("val", "train", "train_without_aux"):
        summary = speedup_over_seeds([p[basis] for p in per_seed])
        if summary:
          row["speedup_%s" % basis] = summary
      dense_ce = [final_val_ce(dense_by_seed[r.seed]) for r, _ in pairs
                  if r.seed in dense_by_seed]
      own_ce = [final_val_ce(e) for r, e in pairs if r.seed in dense_by_seed]
      deltas = [a - b for a, b in zip(own_ce, dense_ce)
                if a is not None and b is not None]
      if deltas:
        row["val_ce_minus_dense"] = stats.mean_interval(deltas)
    rows[config] = row
  return {"dense": dense_name, "configs": rows}


def by_config(runs: Sequence[claims_runs.Run], entries: Dict[str, Any],
              baseline: Optional[str] = None) -> Dict[str, Any]:
  """Per config summaries (capacity factor, precision, init, z-loss).

  With a baseline config, each other config also gets its validation CE
  minus the baseline's, paired by seed, with a 95% interval.
  """
  groups = group(runs, entries)
  out = {config: summarize(pairs) for config, pairs in groups.items()}
  base = {r.seed: final_val_ce(e) for r, e in groups.get(baseline, [])}
  for config, pairs in groups.items():
    if config == baseline or not base:
      continue
    deltas = [final_val_ce(e) - base[r.seed] for r, e in pairs
              if base.get(r.seed) is not None and final_val_ce(e) is not None]
    if deltas:
      out[config]["val_ce_minus_baseline"] = stats.mean_interval(deltas)
  return out


def finetune(runs: Sequence[claims_runs.Run],
             entries: Dict[str, Any]) -> Dict[str, Any]:
  """Peak and final validation accuracy per expert-dropout config.

  Peak over checkpoints, as the paper reports (best validation score).
  """
  out = {}
  for config, pairs in group(runs, entries).items():
    if not pairs or not pairs[0][0].init_from:
      continue  # the pretraining runs the fine-tuning starts from
    peaks, finals = [], []
    for _, entry in pairs:
      scores = [(int(s), v) for s, m in entry.get("eval", {}).items()
                for k, v in m.items() if k.endswith("/accuracy")]
      if scores:
        peaks.append(max(v for _, v in scores))
        finals.append(sorted(scores)[-1][1])
    row = summarize(pairs)
    if peaks:
      row["peak_accuracy"] = stats.spread(peaks)
      row["final_accuracy"] = stats.spread(finals)
    out[config] = row
  return out


def analyze(plan: Dict[str, List[claims_runs.Run]],
            entries: Dict[str, Any],
            baselines: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
  """claim -> its analysis, for the claims the plan has.

  baselines: claim -> the config its other configs are compared with.
  """
  out = {}
  for claim, runs in plan.items():
    if claim == "sample_efficiency":
      out[claim] = sample_efficiency(runs, entries)
    elif claim == "expert_dropout":
      out[claim] = finetune(runs, entries)
    else:
      out[claim] = by_config(runs, entries, (baselines or {}).get(claim))
  return out
