"""Document sections from the claim runs (results/claims/runs.json).

The analysis is recomputed from the stored runs with the bench's own code
(claims.analysis), so the documents and results/claims/summary.md cannot
disagree. Differences are paired by seed (same data order) with 95%
t-intervals over the seeds; "not significant" when the interval holds 0.
"""

import collections
import os
from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import formatting
from switch_mtf.bench.claims import paper
from switch_mtf.bench.claims import plan as claims_plan
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import stats
from switch_mtf.bench.common import store as store_lib

_LABELS = {
    "dense": "T5-Tiny (dense)",
    "switch_E8_500steps": "Switch E8, cf 1.25, float32, init 1.0 (baseline)",
    "switch_E8_cf1.0_500steps": "Switch E8, cf 1.0",
    "switch_E8_cf2.0_500steps": "Switch E8, cf 2.0",
    "top2_E8_cf1.0_500steps": "top-2 MoE E8, cf 1.0",
    "top2_E8_500steps": "top-2 MoE E8, cf 1.25",
    "top2_E8_cf2.0_500steps": "top-2 MoE E8, cf 2.0",
    "switch_E8_bfloat16_500steps": "bfloat16, float32 router (selective)",
    "switch_E8_bfloat16_router_bfloat16_500steps": "bfloat16 everywhere",
    "switch_E8_init0.1_500steps": "init scale 0.1",
    "switch_E8_z0.001_500steps": "router z-loss 0.001",
    "ft_rte_switch_E8_ed0.1": "expert dropout 0.1 (= dropout)",
    "ft_rte_switch_E8_ed0.4": "expert dropout 0.4",
}
NOT_RUN = "not run yet"
_RECIPE_LABELS = {
    "dense": "dense, T5's default schedule",
    "switch_E8": "Switch E8, T5's default schedule",
    "rsqrt_dense": "dense, rsqrt schedule",
    "rsqrt_switch_E8": "Switch E8, rsqrt schedule",
}


class ClaimResults:
  """The stored claim runs and their analysis under the full plan."""

  def __init__(self, folder: str):
    path = os.path.join(folder, "runs.json")
    if not os.path.exists(path):
      raise FileNotFoundError(
          "%s is missing; run `python tools/bench.py --parts=claims` (or "
          "restore it from git)." % path)
    self.store = store_lib.ResultStore(path)
    self.entries = dict(self.store.items())
    self.plan = claims_plan.claims(claims_plan.FULL)
    self.analysis = claims_analysis.analyze(
        self.plan, self.entries,
        claims_plan.ablation_baselines(claims_plan.FULL))

  def fresh_seeds(self, claim: str) -> Dict[str, Tuple[List[int], List[int]]]:
    """config -> (stored seeds, those whose provenance matches today's)."""
    out: Dict[str, Tuple[List[int], List[int]]] = {}
    for config, pairs in claims_analysis.group(self.plan[claim],
                                               self.entries).items():
      stored, fresh = out.setdefault(config, ([], []))
      for run, entry in pairs:
        stored.append(run.seed)
        if _provenance_state(entry) == "fresh":
          fresh.append(run.seed)
    return out

  def per_seed_val_ce(self, claim: str) -> Dict[str, Dict[int, float]]:
    """config -> seed -> final validation CE."""
    out: Dict[str, Dict[int, float]] = {}
    for config, pairs in claims_analysis.group(self.plan[claim],
                                               self.entries).items():
      for run, entry in pairs:
        value = claims_analysis.final_val_ce(entry)
        if value is not None:
          out.setdefault(config, {})[run.seed] = value
    return out


# The Switch configuration whose repeats show the run-to-run spread.
SPREAD_CONFIG = "switch_E8_500steps"


def seed_spread(results: ClaimResults, config: str = SPREAD_CONFIG) -> str:
  """How far one Switch configuration's seeds end apart, as a phrase."""
  for claim in results.plan:
    per_seed = results.per_seed_val_ce(claim).get(config, {})
    if len(per_seed) >= 2:
      low, high = min(per_seed.values()), max(per_seed.values())
      return ("the %d seeds of `%s` (results/claims/runs.json) end %.3f "
              "apart in final validation CE, %.3f to %.3f" % (
                  len(per_seed), config, high - low, low, high))
  return ("results/claims/runs.json holds no two seeds of `%s` yet"
          % config)


def label(config: str) -> str:
  if config in _LABELS:
    return _LABELS[config]
  return config.replace("switch_", "Switch ").replace("_", " ")


def _better(own: Dict[int, float], base: Dict[int, float]) -> Tuple[int, int]:
  seeds = sorted(set(own) & set(base))
  return sum(1 for s in seeds if own[s] < base[s]), len(seeds)


def _by_experts(configs: Dict[str, Any]) -> List[Tuple[str, Any]]:
  def key(item):
    name = item[0]
    return (0, 0) if "dense" in name else (1, int(name.split("_E")[1]))
  return sorted(configs.items(), key=key)


def sample_efficiency_table(results: ClaimResults) -> List[str]:
  """Dense vs Switch E4..E32 at equal FLOPs: quality, paired, speed-up."""
  se = results.analysis["sample_efficiency"]
  per_seed = results.per_seed_val_ce("sample_efficiency")
  dense = se["dense"]
  lines = ["| model | seeds | val CE (mean ± std) | − dense, paired by data "
           "order: mean [95% CI] | seeds better than dense | step speed-up "
           "to dense's final val CE [95% CI] |", "|---|---|---|---|---|---|"]
  for config, row in _by_experts(se["configs"]):
    if config == dense:
      lines.append("| %s | %d | %s | – | – | – |" % (
          label(config), row.get("seeds_done", 0),
          formatting.mean_std(row["val_ce"])))
      continue
    better, seeds = _better(per_seed.get(config, {}), per_seed.get(dense, {}))
    lines.append("| %s | %d | %s | %s | %d of %d | %s |" % (
        label(config), row.get("seeds_done", 0),
        formatting.mean_std(row.get("val_ce")),
        formatting.interval(row.get("val_ce_minus_dense")), better, seeds,
        formatting.speedup(row.get("speedup_val"))))
  return lines


def sample_efficiency_findings(results: ClaimResults) -> List[str]:
  """What the table shows, in words computed from it."""
  se = results.analysis["sample_efficiency"]
  dense_row = se["configs"].get(se["dense"], {})
  switch = [(c, r) for c, r in _by_experts(se["configs"])
            if c != se["dense"] and r.get("val_ce")]
  if not dense_row.get("val_ce") or not switch:
    return ["- Not enough finished runs to compare Switch with dense yet."]
  dense = dense_row["val_ce"]["mean"]
  significant = [c for c, r in switch
                 if (r.get("val_ce_minus_dense") or {}).get("significant")]
  better_mean = [c for c, r in switch if r["val_ce"]["mean"] < dense]
  best_config, best = min(switch, key=lambda item: item[1]["val_ce"]["mean"])
  per_seed = results.per_seed_val_ce("sample_efficiency")
  wins, seeds = _better(per_seed.get(best_config, {}),
                        per_seed.get(se["dense"], {}))
  means = [r["val_ce"]["mean"] for _, r in switch]
  monotone = all(a >= b for a, b in zip(means, means[1:]))
  return [
      "- Mean validation CE: %d of %d Switch sizes below dense's %.3f; the "
      "lowest is %s at %.3f (better than dense on %d of %d seeds). Ordered "
      "by experts, the means %s (an order of means, not a tested trend)." % (
          len(better_mean), len(switch), dense, label(best_config),
          best["val_ce"]["mean"], wins, seeds,
          "fall monotonically" if monotone else "do not fall monotonically"),
      "- Significance: %s." % (
          "%d of %d differences to dense are significant at 95%% (%s); each "
          "interval is taken on its own, and with %d comparisons about %.1f "
          "would be significant by chance alone if experts did not matter" % (
              len(significant), len(switch),
              ", ".join(label(c) for c in significant), len(switch),
              0.05 * len(switch)) if significant else
          "no difference to dense is significant at 95%% with %d seeds" %
          seeds)]


_ABLATION_HEADER = (
    "config (%d steps)" % claims_plan.FULL.ablation_steps, "seeds", "diverged", "val CE (mean ± std)",
    "− baseline, paired: mean [95% CI]", "seeds better than baseline",
    "tokens dropped (2nd half)", "stored seeds with today's provenance")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]
           ) -> List[str]:
  return ["| %s |" % " | ".join(header), "|" + "---|" * len(header)] + [
      "| %s |" % " | ".join(row) for row in rows]


def _ablation_rows(results: ClaimResults, claim: str
                   ) -> List[Tuple[str, List[str]]]:
  """config -> the cells of _ABLATION_HEADER, in plan order."""
  rows = results.analysis[claim]
  per_seed = results.per_seed_val_ce(claim)
  baseline = claims_plan.ablation_baselines(claims_plan.FULL)[claim]
  fresh = results.fresh_seeds(claim)
  out = []
  for config, row in rows.items():
    better, seeds = _better(per_seed.get(config, {}),
                            per_seed.get(baseline, {}))
    stored, current = fresh.get(config, ([], []))
    out.append((config, [
        label(config), "%d" % row.get("seeds_done", 0),
        "%d" % row.get("diverged", 0),
        formatting.mean_std(row.get("val_ce")) if row.get("seeds_done")
        else NOT_RUN,
        "–" if config == baseline else formatting.interval(
            row.get("val_ce_minus_baseline")),
        "–" if config == baseline or not seeds else "%d of %d" % (
            better, seeds),
        formatting.mean_std(row.get("tokens_dropped_fraction"), 1,
                            percent=True),
        "%d of %d" % (len(current), len(stored)) if stored else "–"]))
  return out


def mixed_pairs(results: ClaimResults,
                claims: Sequence[str] = claims_plan.ABLATION_CLAIMS
                ) -> List[str]:
  """Configs paired with their baseline, for some seed, across provenance.

  A run with today's provenance trained through the guarded recipe; one
  recorded before provenance (or stale) may not have: pairing the two by
  seed compares more than the knob. Only seeds scored on both sides count
  (a diverged run takes no part in the paired difference).
  """
  mixed = []
  for claim in claims:
    baseline = claims_plan.ablation_baselines(claims_plan.FULL)[claim]
    fresh = results.fresh_seeds(claim)
    scored = results.per_seed_val_ce(claim)
    base_fresh = fresh.get(baseline, ([], []))[1]
    for config, (_, current) in fresh.items():
      paired = set(scored.get(config, {})) & set(scored.get(baseline, {}))
      if config != baseline and config not in mixed and any(
          (s in current) != (s in base_fresh) for s in paired):
        mixed.append(config)
  return mixed


def _mixing_sentence(mixed: Sequence[str],
                     name: Callable[[str], str] = label) -> List[str]:
  if not mixed:
    return []
  return ["- %d %s paired with the baseline, for some seed, across "
          "provenance: a run with today's provenance against one recorded "
          "before provenance existed (or stale), so %s more than the knob: "
          "%s. `python tools/bench.py --parts=claims --rerun_stale` trains "
          "the latter again (column \"stored seeds with today's "
          "provenance\")." % (
              len(mixed), "config is" if len(mixed) == 1 else "configs are",
              "it compares" if len(mixed) == 1 else "they compare",
              "; ".join(name(c) for c in mixed))]


def ablation_table(results: ClaimResults,
                   claims: Sequence[str] = claims_plan.ABLATION_CLAIMS
                   ) -> List[str]:
  """Ablation configs vs their Switch E8 baseline (paired by seed)."""
  rows, seen = [], set()
  for claim in claims:
    for config, cells in _ablation_rows(results, claim):
      if config not in seen:  # the shared baseline once
        seen.add(config)
        rows.append(cells)
  return _table(_ABLATION_HEADER, rows)


def ablation_findings(results: ClaimResults) -> List[str]:
  """Which ablation differences are significant, and how many chance gives."""
  significant, total = [], 0
  for claim in claims_plan.ABLATION_CLAIMS:
    for config, row in results.analysis[claim].items():
      summary = row.get("val_ce_minus_baseline")
      if summary and summary["low"] is not None:
        total += 1
        if summary["significant"]:
          significant.append("%s (%s)" % (label(config),
                                          formatting.interval(summary)))
  return ["- %d of %d ablation differences to the baseline are significant "
          "at 95%%%s. Each interval is taken on its own: with %d "
          "comparisons, about %.1f would be significant by chance alone if "
          "no knob mattered." % (
              len(significant), total,
              ": " + "; ".join(significant) if significant else "", total,
              0.05 * total)] + _mixing_sentence(mixed_pairs(results))


def paper_ablations() -> List[str]:
  """The paper's figures for the same knobs (quoted, not measured here)."""
  lines = ["| paper | figure |", "|---|---|"]
  for (model, cf), (nlp, speed) in paper.CAPACITY_FACTOR.items():
    lines.append("| Table 1: %s%s | NLP %.3f, %d examples/s |" % (
        model, ", cf %g" % cf if cf else "", nlp, speed))
  for name, (nlp, speed, diverged) in paper.PRECISION.items():
    lines.append("| Table 2: %s | NLP %.3f, %d examples/s%s |" % (
        name, nlp, speed, ", diverged" if diverged else ""))
  for scale, (mean, std) in paper.INIT_SCALE.items():
    lines.append("| Table 3: init scale %g | NLP %.2f ± %.2f |" % (
        scale, mean, std))
  for name, (glue, superglue) in paper.EXPERT_DROPOUT.items():
    lines.append("| Table 4: %s | GLUE %.1f, SuperGLUE %.1f |" % (
        name, glue, superglue))
  return lines


_POLICY_LABELS = {
    "argmax": "argmax (no exploration)",
    "sample": "sample softmax (temperature 1)",
    "input_dropout": "input dropout",
}
_APPENDIX_TITLES = {
    "router_policy": "Router exploration (Table 11)",
    "ntlb": "No-Token-Left-Behind (Appendix B)",
    "priority_dropping": "Priority dropping (Mesh TF's `switch_max`)",
    "experts_attention": "Experts in attention (Table 10)",
    "experts_attention_bfloat16": "Experts in attention, bfloat16 (Table 10)",
}
# What the paper says where it gives no figure for a config.
_APPENDIX_PAPER_NOTES = {"ntlb": paper.NTLB,
                         "priority_dropping": paper.PRIORITY_DROPPING}


def _appendix_config(**knobs: Any) -> str:
  """plan.py's config (run name minus seed) of the E8 ablation with knobs."""
  budget = claims_plan.FULL
  knobs.setdefault("train_steps", budget.ablation_steps)
  return claims_analysis.config_name(claims_plan.switch(
      budget, 0, **knobs).name)


def _nlp(figure: float, source: str) -> str:
  return "%.3f (%s)" % (figure, source)


def appendix_configs() -> Dict[str, Dict[str, Tuple[str, str]]]:
  """claim -> config -> (what the config is, the paper's figure for it)."""
  base = _appendix_config()
  cf = claims_plan.PRIORITY_CAPACITY_FACTOR
  policy = paper.ROUTER_POLICY
  capacity = paper.CAPACITY_FACTOR
  attention = paper.EXPERTS_ATTENTION
  bfloat16_steps = claims_plan.FULL.bfloat16_steps

  def table10(model: str, dtype: str) -> str:
    if (model, dtype) not in attention:
      return "not in Table 10"
    figures = attention[(model, dtype)]
    return ("diverged (Table 10)" if figures is None
            else _nlp(figures[0], "Table 10, 100k steps"))

  return {
      "router_policy": {
          base: ("input jitter (the paper's; baseline)",
                 _nlp(policy["input_jitter"], "Table 11")),
          **{_appendix_config(router_policy=name): (
              _POLICY_LABELS[name], _nlp(policy[name], "Table 11"))
             for name in claims_plan.OTHER_POLICIES}},
      "ntlb": {
          base: ("overflow tokens dropped (baseline)", "–"),
          _appendix_config(routing="ntlb"): (
              "NTLB, up to %d passes" % claims_plan.NTLB_TOP_K,
              "no figure given")},
      "priority_dropping": {
          base: ("token order, cf %r (baseline)" %
                 claims_plan.DEFAULT_CAPACITY_FACTOR,
                 _nlp(capacity[("Switch", claims_plan.DEFAULT_CAPACITY_FACTOR)
                               ][0], "Table 1")),
          _appendix_config(capacity_factor=cf): (
              "token order, cf %r" % cf,
              _nlp(capacity[("Switch", cf)][0], "Table 1")),
          _appendix_config(capacity_factor=cf, routing="switch_max"): (
              "gate priority (`switch_max`), cf %r" % cf, "not in the paper")},
      "experts_attention": {
          base: ("Experts FF, float32 (baseline)",
                 table10("Experts FF", "float32")),
          _appendix_config(attention_experts=True): (
              "Experts FF + attention, float32",
              table10("Experts FF + Attention", "float32"))},
      "experts_attention_bfloat16": {
          _appendix_config(activation_dtype="bfloat16",
                           train_steps=bfloat16_steps): (
              "Experts FF, bfloat16 (baseline)",
              table10("Experts FF", "bfloat16")),
          _appendix_config(attention_experts=True,
                           activation_dtype="bfloat16",
                           train_steps=bfloat16_steps): (
              "Experts FF + attention, bfloat16",
              table10("Experts FF + Attention", "bfloat16"))},
  }


def _contrasts() -> Dict[str, Tuple[str, str]]:
  """claim -> (config, the config it is paired with): the comparisons a
  claim is about that its baseline does not make (same capacity
  factor)."""
  cf = claims_plan.PRIORITY_CAPACITY_FACTOR
  return {
      "priority_dropping": (
          _appendix_config(capacity_factor=cf, routing="switch_max"),
          _appendix_config(capacity_factor=cf)),
  }


def _paired(own: Dict[int, float], other: Dict[int, float]
            ) -> Dict[str, Any]:
  seeds = sorted(set(own) & set(other))
  return stats.mean_interval([own[s] - other[s] for s in seeds]
                             ) if seeds else {}


def _difference_text(row: Dict[str, Any], summary: Dict[str, Any],
                     planned: int) -> str:
  """A config's difference in words: its interval, or why there is none."""
  done, diverged = row.get("seeds_done", 0), row.get("diverged", 0)
  if not done:
    return NOT_RUN
  text = formatting.interval(summary) if summary else (
      "no finished seed to pair yet")
  if diverged:
    text += ", %d of %d seeds diverged" % (diverged, done)
  if done < planned:
    text += " (%d of %d seeds run)" % (done, planned)
  return text


def _appendix_claim(results: ClaimResults, claim: str,
                    configs: Dict[str, Tuple[str, str]]) -> List[str]:
  """One appendix claim: its table, significance and provenance lines."""
  baseline = claims_plan.ablation_baselines(claims_plan.FULL)[claim]
  steps = next(run.train_steps for run in results.plan[claim])
  rows = []
  for config, cells in _ablation_rows(results, claim):
    title, figure = configs.get(config, (label(config), "–"))
    rows.append([title] + cells[1:] + [figure])
  analysis = results.analysis[claim]
  planned = collections.Counter(claims_analysis.config_name(run.name)
                                for run in results.plan[claim])

  def name(config: str) -> str:
    return configs.get(config, (label(config),))[0]

  words = ["%s: %s" % (name(c), _difference_text(
      analysis[c], analysis[c].get("val_ce_minus_baseline"), planned[c]))
           for c in analysis if c != baseline]
  lines = (["**%s.**" % _APPENDIX_TITLES[claim], ""]
           + _table(("config (%d steps)" % steps,) + _ABLATION_HEADER[1:]
                    + ("paper: NLP, higher is better",), rows) + [""]
           + (["- " + _APPENDIX_PAPER_NOTES[claim]]
              if claim in _APPENDIX_PAPER_NOTES else [])
           + ["- Minus the baseline (paired by seed, 95%%): %s." %
              "; ".join(words)])
  if claim in _contrasts():
    config, other = _contrasts()[claim]
    per_seed = results.per_seed_val_ce(claim)
    lines.append("- %s minus %s (paired by seed, 95%%): %s." % (
        configs[config][0], configs[other][0], _difference_text(
            analysis[config], _paired(per_seed.get(config, {}),
                                      per_seed.get(other, {})),
            planned[config])))
  lines += _mixing_sentence(mixed_pairs(results, [claim]), name)
  names = [run.name for run in results.plan[claim]]
  stored = [(n, results.entries[n]) for n in names if n in results.entries]
  runs = _by_provenance(stored)
  lines.append(
      "- Runs: %d of %d stored; %d match today's code and gin files, %d "
      "stale%s, %d recorded before provenance existed." % (
          len(stored), len(names), len(runs["fresh"]), len(runs["stale"]),
          " (%s)" % ", ".join("`%s`" % n for n in runs["stale"])
          if runs["stale"] else "", len(runs["missing"])))
  return lines


def appendix_ablations(results: ClaimResults) -> List[str]:
  """The appendices' ablations, each beside the paper's figures."""
  lines: List[str] = []
  for claim, configs in appendix_configs().items():
    lines += _appendix_claim(results, claim, configs) + [""]
  return lines[:-1]


def appendix_summary(results: ClaimResults) -> List[str]:
  """One line on the appendices' ablations, for the README."""
  significant, intervals, missing = [], 0, 0
  configs = appendix_configs()
  baselines = claims_plan.ablation_baselines(claims_plan.FULL)
  for claim in claims_plan.APPENDIX_CLAIMS:
    for config, row in results.analysis[claim].items():
      if config == baselines[claim]:
        continue
      summary = row.get("val_ce_minus_baseline")
      if not row.get("seeds_done"):
        missing += 1
      elif summary and summary["low"] is not None:
        intervals += 1
        if summary["significant"]:
          significant.append("%s (%s)" % (configs[claim][config][0],
                                          formatting.interval(summary)))
  planned = {run.name for claim in claims_plan.APPENDIX_CLAIMS
             for run in results.plan[claim]}
  return ["- %d of %d runs stored, %d configs not run yet; %d of %d "
          "differences to the baseline significant at 95%%%s (about %.1f "
          "would be by chance alone if no knob mattered)."
          % (len(planned & set(results.entries)), len(planned), missing,
             len(significant), intervals,
             ": " + "; ".join(significant) if significant else "",
             0.05 * intervals)]


def recipe_table(results: ClaimResults) -> List[str]:
  lines = ["| run (seed 0, 1500 steps) | val CE | final train loss |",
           "|---|---|---|"]
  for config, row in results.analysis["recipe"].items():
    lines.append("| %s | %s | %s |" % (
        _RECIPE_LABELS.get(config, config),
        formatting.mean_std(row.get("val_ce")),
        formatting.mean_std(row.get("final_train_loss"))))
  return lines


def finetune_table(results: ClaimResults) -> List[str]:
  lines = ["| config | seeds | peak val accuracy | final val accuracy |",
           "|---|---|---|---|"]
  for config, row in results.analysis["expert_dropout"].items():
    lines.append("| %s | %d | %s | %s |" % (
        label(config), row.get("seeds_done", 0),
        formatting.mean_std(row.get("peak_accuracy"), 1),
        formatting.mean_std(row.get("final_accuracy"), 1)))
  return lines


def steps_per_second(results: ClaimResults) -> List[str]:
  se = results.analysis["sample_efficiency"]["configs"]
  rates = [r["steps_per_sec"] for r in se.values() if r.get("steps_per_sec")]
  if not rates:
    return []
  return ["- The CLI's own steps/s in these runs: %.1f–%.1f (each run's "
          "rate with whatever else ran on the machine; the side-by-side "
          "speed figures are the layer and model timings)." % (
              min(r["min"] for r in rates), max(r["max"] for r in rates))]


def _by_provenance(entries: Iterable[Tuple[str, Dict[str, Any]]]
                   ) -> Dict[str, List[str]]:
  """Run names by provenance: "fresh", "stale" or "missing" (none)."""
  out: Dict[str, List[str]] = {"fresh": [], "stale": [], "missing": []}
  for name, entry in sorted(entries):
    out[_provenance_state(entry)].append(name)
  return out


def _provenance_state(entry: Dict[str, Any]) -> str:
  """One of "fresh", "stale" or "missing" (recorded before provenance
  existed)."""
  record = entry.get("provenance")
  if not record:
    return "missing"
  return "stale" if provenance.stale_reasons(record) else "fresh"


def provenance_lines(results: ClaimResults) -> List[str]:
  """How many stored runs carry provenance, and which are stale."""
  runs = _by_provenance(results.entries.items())
  lines = ["Of the %d stored claim runs, %d carry provenance that matches "
           "today's code and gin files, %d are stale and %d were recorded "
           "before provenance existed (results/claims/summary.md lists "
           "each)." % (len(results.entries), len(runs["fresh"]),
                       len(runs["stale"]), len(runs["missing"]))]
  noted = [n for n, e in sorted(results.entries.items()) if e.get("note")]
  if noted:
    lines.append("Runs whose stored commands were rewritten after they ran "
                 "(each run's `note` says how): %s." % ", ".join(
                     "`%s`" % n for n in noted))
  return lines
