"""results/headline/summary.md: the headline experiment, as the paper shows it.

Validation CE against steps and against wall-clock (mean over seeds), the
final CE of each model with its 95% t-interval and its paired difference
to dense ("not significant" when the interval contains 0), final CE
against the number of experts, the steps each Switch model needs to reach
dense's final CE as a speed-up with its interval or "not reached"
(claims/analysis.py computes these), each model's step time from the speed
benchmark, the issue's target part by part and, when it is not met, the
extrapolated budget at which it would be (headline_target.py). The same
Markdown lines are the generated sections of README.md and docs/results.md
(documents/headline_text.py).
"""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import formatting
from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import headline_demo
from switch_mtf.bench.claims import headline_distill as distill
from switch_mtf.bench.claims import headline_target as target
from switch_mtf.bench.claims import report as claims_report
from switch_mtf.bench.common import plots
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import stats
from switch_mtf.bench.common import store as store_lib
from switch_mtf.cli import progress

PILOTS_FILE = "pilots.json"
CURVES_PLOT = "val_ce.png"
WALLCLOCK_PLOT = "val_ce_wallclock.png"
EXPERTS_PLOT = "val_ce_vs_experts.png"


def model_name(config: str) -> str:
  found = target.experts(config)
  return ("Switch E%d" % found if found else
          "dense (%s)" % headline.PROTOCOL.speed_name(None))


def spec_name(config: str) -> str:
  """The speed benchmark's name of a headline model (model_step specs)."""
  return headline.PROTOCOL.speed_name(target.experts(config))


def step_times(speed_dir: str) -> Tuple[Optional[str], Dict[str, float]]:
  """(entry name, spec name -> median ms of a whole training step).

  From the speed benchmark's entry for the protocol's models
  (headline.speed_key in results/speed/models.json), all measured side by
  side on the idle machine; (None, {}) if it is not stored.
  """
  path = os.path.join(speed_dir, "models.json")
  key = headline.speed_key()
  if not os.path.exists(path):
    return None, {}
  results = store_lib.ResultStore(path)
  if not results.done(key):
    return None, {}
  return key, {spec: model["median_ms"]
               for spec, model in results.get(key)["models"].items()}


class Headline:
  """The stored headline runs under the protocol's plan, analysed."""

  def __init__(self, entries: Dict[str, Any], folder: str, speed_dir: str):
    self.entries = entries
    self.folder = folder  # where the plots are (results/headline)
    self.plan = headline.plan()
    (self.label, self.runs), = self.plan.items()
    self.times_entry, self.times = step_times(speed_dir)
    self.groups = claims_analysis.group(self.runs, entries)
    self.dense = headline.dense_config(self.runs)
    self.result = claims_analysis.sample_efficiency(self.runs, entries,
                                                    self.dense)
    # config -> seed -> validation curve, each computed once.
    by_seed = {config: {run.seed: claims_execute.val_curve(entry)
                        for run, entry in pairs}
               for config, pairs in self.groups.items() if pairs}
    self.curves = {config: list(per_seed.values())
                   for config, per_seed in by_seed.items()}
    self.mean_curves = {config: target.mean_curve(per_seed)
                        for config, per_seed in self.curves.items()}
    self.check = target.check(self.result, self.mean_curves,
                              len(headline.SEEDS))
    self.extrapolation = (
        target.extrapolate(self.mean_curves, self.dense,
                           headline.PROTOCOL.steps)
        if self.dense in self.mean_curves else {"models": {}})
    self.demo = headline_demo.find_setting(
        by_seed, self.dense,
        {config: self.step_ms(config) for config in self.groups},
        len(headline.SEEDS))
    pilots_path = os.path.join(folder, PILOTS_FILE)
    pilots = (dict(store_lib.ResultStore(pilots_path).items())
              if os.path.exists(pilots_path) else {})
    # Each candidate's rule on its seed-0 runs, wherever they are stored.
    self.pilot_rules = [(protocol, candidate_rule(protocol,
                                                  {**pilots, **entries}))
                        for protocol in headline.CANDIDATES]

  @property
  def times_source(self) -> str:
    """Where the idle step times come from, or how to measure them."""
    if self.times_entry:
      return "`%s`" % self.times_entry
    return ("not measured yet: `python tools/bench.py --parts=models` "
            "stores entry `%s`" % headline.speed_key())

  @property
  def any_runs(self) -> bool:
    return bool(self.curves)

  def final_by_seed(self) -> Dict[str, Dict[int, float]]:
    """config -> seed -> final validation CE."""
    out: Dict[str, Dict[int, float]] = {}
    for config, pairs in self.groups.items():
      for run, entry in pairs:
        value = claims_analysis.final_val_ce(entry)
        if value is not None:
          out.setdefault(config, {})[run.seed] = value
    return out

  def final_interval(self, config: str) -> Optional[Dict[str, Any]]:
    values = list(self.final_by_seed().get(config, {}).values())
    return stats.mean_interval(values) if values else None

  def step_ms(self, config: str) -> Optional[float]:
    return self.times.get(spec_name(config))

  def analysis(self) -> Dict[str, Any]:
    """What analysis.json holds: every figure the summary quotes."""
    decision = distill.decide(self.entries)
    return {self.label: self.result, "target": self.check,
            "extrapolation": self.extrapolation, "demo": self.demo,
            "pilot_rules": [dict(rule, protocol=protocol.tag)
                            for protocol, rule in self.pilot_rules],
            "step_times": {"entry": self.times_entry, "ms": self.times},
            "distillation": dict(decision, students=distill.analyze(
                self.entries, decision["teacher"])
                                 if decision["teacher"] else None)}


def _mean_interval(summary: Optional[Dict[str, Any]], digits: int = 3) -> str:
  if not summary:
    return "–"
  if summary["low"] is None:
    return "%.*f (1 seed, no interval)" % (digits, summary["mean"])
  return "%.*f [%.*f, %.*f]" % (digits, summary["mean"], digits,
                                summary["low"], digits, summary["high"])


def table_lines(h: Headline) -> List[str]:
  """One row per model: final CE, paired difference, speed-up, step time."""
  if not h.any_runs:
    return ["No headline run is stored yet (results/headline/runs.json); "
            "`python tools/bench.py --parts=headline` trains them."]
  times = "whole-step time, ms (`%s`)" % h.times_entry if h.times_entry else (
      "whole-step time, ms")
  md = ["| model | seeds | final val CE: mean [95%% CI] | − dense, paired by "
        "seed: mean [95%% CI] | steps to dense's final val CE: speed-up "
        "[95%% CI] | %s |" % times, "|---|---|---|---|---|---|"]
  for config, row in h.result["configs"].items():
    ms = h.step_ms(config)
    dense = config == h.dense
    md.append("| %s | %d | %s | %s | %s | %s |" % (
        model_name(config), row.get("seeds_done", 0),
        _mean_interval(h.final_interval(config)),
        "–" if dense else formatting.interval(row.get("val_ce_minus_dense")),
        "–" if dense else formatting.speedup(row.get("speedup_val")),
        "%.0f" % ms if ms is not None else "–"))
  return md


def _status(text: str) -> str:
  return "**%s**" % text


def target_lines(h: Headline) -> List[str]:
  """The issue's target, part by part: met, not met or not enough runs."""
  check, rows = h.check, h.result["configs"]
  seeds = check["seeds"]
  md = ["Judged on the protocol's %d seeds per model; a part with fewer "
        "stored is \"%s\"." % (seeds, target.NOT_ENOUGH), ""]
  speed = ["%s %s (%s)" % (model_name(c), formatting.speedup(
      rows[c].get("speedup_val")), s)
           for c, s in check["speedup"]["models"].items()]
  md.append("- Speed-up: Switch with at least %d experts reaches dense's "
            "final validation CE in at most %g× the steps (a speed-up of at "
            "least %.2f×, geometric mean over the seeds, every seed "
            "reaching it): %s. %s" % (
                target.MIN_EXPERTS, target.STEP_FRACTION,
                check["target_speedup"], _status(check["speedup"]["status"]),
                "; ".join(speed) + "." if speed else ""))
  diffs = ["%s %s (%s)" % (model_name(c), formatting.interval(
      rows[c].get("val_ce_minus_dense")), s)
           for c, s in check["difference"]["models"].items()]
  md.append("- Paired final-loss difference: its 95%% interval excludes 0, "
            "Switch lower: %s. %s" % (
                _status(check["difference"]["status"]),
                "; ".join(diffs) + "." if diffs else ""))
  order = check["ordering"]
  text = "- Loss at equal steps falls %s experts: %s." % (
      " → ".join(map(str, target.ORDER)), _status(order["status"]))
  if "values" in order:
    text += (" At step %d the seed-mean validation CE is %s; it falls at %d "
             "of the %d checkpoints." % (
                 order["step"], " / ".join("%.3f" % v
                                           for v in order["values"]),
                 order["falling_at"], order["checkpoints"]))
  differences = target.paired_order_differences(h.final_by_seed())
  if differences:
    text += " Paired by seed (an order of means is not a tested trend): %s." % (
        "; ".join("%s − %s %s" % (model_name(a), model_name(b),
                                  formatting.interval(d))
                  for a, b, d in differences))
  md += [text, "- The target as a whole (one model meeting both the speed-up "
         "and the difference, and the ordering): %s." % _status(
             check["overall"])]
  return md


def extrapolation_lines(h: Headline) -> List[str]:
  """The budget at which the fitted curves would meet the speed-up."""
  pending = [c for c, s in h.check["speedup"]["models"].items()
             if s != target.MET]
  if not h.any_runs or not pending:
    return ["No extrapolation: %s." % (
        "no run is stored yet" if not h.any_runs else
        "the speed-up part is met by the measured curves")]
  ex = h.extrapolation
  if "reason" in ex:
    return ["No extrapolation: %s." % ex["reason"]]
  md = ["An extrapolation, not a measurement: L(s) = a + b·s^−c fitted by "
        "least squares to each model's seed-mean validation curve "
        "(checkpoints from step %d on), then the smallest budget S (dense's "
        "steps) at which the fitted Switch curve reaches the fitted dense "
        "L(S) by %g·S." % (ex["fit_from_step"], target.STEP_FRACTION), "",
        "| model | seeds | floor a | b | c | residuals: RMS / largest |",
        "|---|---|---|---|---|---|"]
  for config, fit in ex["fits"].items():
    md.append("| %s | %d | %.3f | %.4g | %.3f | %.4f / %.4f |" % (
        model_name(config), len(h.curves[config]), fit["a"], fit["b"],
        fit["c"], fit["rms"], max(abs(r) for r in fit["residuals"])))
  md.append("")
  grid_times = {c: h.step_ms(c) for c in h.result["configs"]}
  for config in pending:
    answer = ex["models"].get(config)
    if answer is None:
      continue
    if answer["budget"] is None:
      md.append("- %s: no extrapolation (%s)." % (model_name(config),
                                                  answer["reason"]))
      continue
    steps = answer["budget"]
    one = target.hours(steps, h.step_ms(h.dense))
    grid = target.grid_hours(steps, grid_times, len(headline.SEEDS))
    md.append("- %s: the fits meet the speed-up at S ≈ %d steps (%.1f× the "
              "measured %d). At the idle step times (`%s`) that is %s of one "
              "dense run and %s for the whole grid (%d models × %d seeds, "
              "training only)." % (
                  model_name(config), round(steps, -2) or steps,
                  steps / headline.PROTOCOL.steps, headline.PROTOCOL.steps,
                  h.times_entry, _hours(one), _hours(grid),
                  len(grid_times), len(headline.SEEDS)))
  return md


def demo_lines(h: Headline) -> List[str]:
  """Whether a checkpoint within the demo's budget shows Switch ahead."""
  demo, setting = h.demo, h.demo["setting"]
  text = ("A Switch checkpoint qualifies when its model trains that many "
          "steps in at most %.0f minutes at its idle step time and its "
          "validation CE is below dense's at the same step on every seed "
          "(switch_mtf/bench/claims/headline_demo.py): **%s**; %s."
          % (headline_demo.BUDGET_SECONDS / 60.0, demo["status"],
             demo["reason"]))
  if setting is None:
    return [text]
  return [text, "", "Setting: %s at step %d (%.1f min of training at the "
          "idle step time), dense minus Switch per seed: %s." % (
              model_name(setting["config"]), setting["steps"],
              setting["minutes"],
              ", ".join("%+.3f" % m for m in setting["margins"]))]


def _hours(value: Optional[float]) -> str:
  return "–" if value is None else "%.1f h" % value


def time_lines(h: Headline) -> List[str]:
  """The stored runs' own training and evaluation time, per model.

  Measured while other work shared the machine (the load column), so
  these are not step times: they say how long the runs took here. Beside
  them, the grid's training time at the idle step times (an estimate).
  """
  md = []
  planned = [h.step_ms(c) for c in h.groups]
  if planned and None not in planned:
    md += ["At the idle step times (`%s`), training the whole grid (%d "
           "models × %d seeds × %d steps, evaluation and input pipeline "
           "excluded) takes %s: an estimate from the speed benchmark, not a "
           "measurement." % (
               h.times_entry, len(planned), len(headline.SEEDS),
               headline.PROTOCOL.steps, _hours(target.grid_hours(
                   headline.PROTOCOL.steps, dict(enumerate(planned)),
                   len(headline.SEEDS)))), ""]
  else:
    md += ["Idle step times of the protocol's models: %s." % h.times_source,
           ""]
  if not h.any_runs:
    return md + ["No headline run is stored yet, so none has been timed."]
  md += ["| model | runs | training, mean (min–max) | evaluation, mean | "
         "other processes' CPU share, mean |", "|---|---|---|---|---|"]
  total, count = 0.0, 0
  for config, pairs in h.groups.items():
    found = [e for _, e in pairs if e.get("train_seconds") is not None]
    if not found:
      md.append("| %s | 0 | – | – | – |" % model_name(config))
      continue
    train = [e["train_seconds"] for e in found]
    evals = [e.get("eval_seconds", 0.0) for e in found]
    shares = [e["load"]["other_cpu_share_mean"] for e in found
              if "other_cpu_share_mean" in (e.get("load") or {})]
    total += sum(train) + sum(evals)
    count += len(found)
    md.append("| %s | %d | %s (%s–%s) | %s | %s |" % (
        model_name(config), len(found),
        progress.format_duration(sum(train) / len(train)),
        progress.format_duration(min(train)),
        progress.format_duration(max(train)),
        progress.format_duration(sum(evals) / len(evals)),
        "%.0f%%" % (100 * sum(shares) / len(shares)) if shares else "–"))
  return md + ["", "Together %s for the %d stored runs (training + "
               "evaluation, each measured under the load shown)." % (
                   progress.format_duration(total), count)]


def _kept(summary: Optional[Dict[str, Any]]) -> str:
  if not summary:
    return "–"
  if summary["low"] is None:
    return "%.0f%% (n=1, no interval)" % (100 * summary["mean"])
  return "%.0f%% [%.0f%%, %.0f%%] (n=%d)" % (
      100 * summary["mean"], 100 * summary["low"], 100 * summary["high"],
      summary["n"])


def _per_seed(finals: Dict[int, float]) -> str:
  return ", ".join("s%d %.3f" % (s, v) for s, v in sorted(finals.items())
                   ) or "–"


def distill_lines(h: Headline) -> List[str]:
  """Paper Table 6 on this protocol: the teacher, the students, gain kept."""
  decision = distill.decide(h.entries)
  experts = decision["teacher"]
  md = ["Teacher: %s." % decision["reason"], ""]
  if experts is None:
    md += ["No student is planned until then. The rows, each a %d-step "
           "run per seed, and their training time at the idle step times "
           "(%s; an estimate: a distilling student's step is taken as a "
           "dense step plus a third of the teacher's, its forward pass; "
           "evaluation excluded):" % (headline.PROTOCOL.steps,
                                      h.times_source), "",
           "| row | paper (Table 6): neg. log perplexity, gain kept | %s |"
           % " | ".join("with Switch E%d" % e
                        for e in distill.CANDIDATE_EXPERTS),
           "|---|---|%s" % ("---|" * len(distill.CANDIDATE_EXPERTS))]
    for row in distill.ROWS:
      md.append("| %s | %s, %s | %s |" % (
          row.label, row.paper_nlp, row.paper_kept, " | ".join(
              _minutes(distill.estimated_minutes(h.times, e, row))
              for e in distill.CANDIDATE_EXPERTS)))
    return md
  result = distill.analyze(h.entries, experts)
  md += ["| model | paper (Table 6): neg. log perplexity, gain kept | seeds "
         "| final val CE per seed | − dense, paired by seed: mean [95% CI] "
         "| teacher's gain kept: mean [95% CI] | training time per run at "
         "the idle step times (estimate) |", "|---|---|---|---|---|---|---|",
         "| %s | %s, – | %d | %s | – | – | – |" % (
             model_name(h.dense), distill.PAPER_DENSE_NLP,
             len(result["dense"]),
             _per_seed(result["dense"])),
         "| teacher: Switch E%d | %s, – | %d | %s | %s | – | – |" % (
             experts, distill.PAPER_TEACHER_NLP,
             len(result["teacher_final"]), _per_seed(result["teacher_final"]),
             formatting.interval(decision["gain"]))]
  for row in distill.ROWS:
    got = result["rows"][row.name]
    kept = _kept(got.get("kept"))
    if got["undefined_seeds"]:
      kept += "; undefined for seed %s (teacher not better than dense)" % (
          ", ".join(map(str, got["undefined_seeds"])))
    md.append("| %s | %s, %s | %d | %s | %s | %s | %s |" % (
        row.label, row.paper_nlp, row.paper_kept, len(got["final"]),
        _per_seed(got["final"]), formatting.interval(got.get("minus_dense")),
        kept, _minutes(distill.estimated_minutes(h.times, experts, row))))
  return md + ["", "Gain kept = (dense − student) / (dense − teacher) in "
               "final validation CE, per seed (the student's data order is "
               "the seed's dense run's, its teacher the seed's Switch run), "
               "with a 95% t-interval over the seeds."]


def _minutes(value: Optional[float]) -> str:
  return "–" if value is None else "%.0f min" % value


def provenance_summary(entries: Dict[str, Any]) -> List[str]:
  """How many stored runs match today's code and gin files; the stale ones."""
  if not entries:
    return ["No headline run is stored yet."]
  stale = [name for name, entry in sorted(entries.items())
           if provenance.stale_reasons(entry.get("provenance"))]
  lines = ["Of the %d stored headline runs, %d carry provenance that matches "
           "today's code and gin files and %d are stale (results/headline/"
           "summary.md lists each with its commit and load)." % (
               len(entries), len(entries) - len(stale), len(stale))]
  if stale:
    lines.append("Stale: %s." % ", ".join("`%s`" % n for n in stale))
  return lines


def candidate_rule(protocol: headline.Protocol,
                   entries: Dict[str, Any]) -> Dict[str, Any]:
  """headline.pilot_rule on the candidate's seed-0 runs among entries."""
  curves = [claims_execute.val_curve(entries[run.name])
            if run.name in entries else []
            for run in headline.pilot_runs(protocol)]
  return headline.pilot_rule(protocol, *curves)


def pilot_rule_lines(h: Headline) -> List[str]:
  """Each candidate protocol's rule and verdict, on its seed-0 runs."""
  lines = ["Each candidate protocol's keep-or-reject rule was written "
           "before its runs (switch_mtf/bench/claims/headline.py says why "
           "each candidate was tried).", ""]
  for protocol, rule in h.pilot_rules:
    text = "- %s / %s, %d steps%s: kept if %s: **%s**" % (
        os.path.basename(protocol.dense_gin)[:-len(".gin")],
        os.path.basename(protocol.switch_gin)[:-len(".gin")],
        protocol.steps,
        " (the protocol; the grid runs whatever the verdict)"
        if protocol == headline.PROTOCOL else "",
        headline.rule_text(protocol), rule["status"])
    if rule["status"] == "pending":
      lines.append(text + "; both seed-0 runs must reach step %d first."
                   % protocol.steps)
      continue
    drop = "%.3f" % rule["drop"] if rule["drop"] is not None else "?"
    text += (". Dense fell by %s over its last %d steps and ends at %.3f; "
             "Switch E%d ends at %.3f." % (
                 drop, protocol.level_off_steps, rule["dense_final"],
                 headline.PILOT_EXPERTS, rule["switch_final"]))
    if rule["failed"]:
      text += " Failed: %s." % "; ".join(rule["failed"])
    lines.append(text)
  return lines


def drop_window(name: str, train_steps: int) -> int:
  """Steps over which the pilots table gives a run's drop: the level-off
  window of the candidate whose run it is, else its last third."""
  for protocol in headline.CANDIDATES:
    if any(name == run.name for run in headline.pilot_runs(protocol)):
      return protocol.level_off_steps
  return train_steps // 3


def pilot_lines(pilots: store_lib.ResultStore) -> List[str]:
  """The pilot runs the protocol was chosen by, as stored (pilots.json).

  A pilot may be stale: it informed the choice of protocol, and only the
  candidates' verdicts use it.
  """
  md = ["| pilot | checkpoint every | validation CE at each checkpoint | "
        "drop over its candidate's level-off window (else its last third) "
        "| training time (other processes' CPU share) | stale? |",
        "|---|---|---|---|---|---|"]
  for name, entry in pilots.items():
    curve = claims_execute.val_curve(entry)
    window = drop_window(name, entry["run"]["train_steps"])
    drop = headline.drop_over_last(curve, window)
    load = entry.get("load") or {}
    md.append("| %s | %d | %s | %s | %s (%s) | %s |" % (
        name, entry["run"]["checkpoint_every"],
        ", ".join("%d: %.3f" % point for point in curve),
        "%.3f (last %d steps)" % (drop, window) if drop is not None
        else "–",
        progress.format_duration(entry.get("train_seconds")),
        "%.0f%%" % (100 * load["other_cpu_share_mean"])
        if "other_cpu_share_mean" in load else "–",
        "; ".join(provenance.stale_reasons(entry.get("provenance")))
        or "no"))
  return md


def write_plots(h: Headline) -> List[str]:
  """Validation CE against steps, minutes and experts, into h.folder.

  The minutes axis needs every plotted model's step time.
  """
  if not h.any_runs:
    return []
  curves = {model_name(c): per_seed for c, per_seed in h.curves.items()}
  written = [plots.mean_curves(
      os.path.join(h.folder, CURVES_PLOT), h.label, "validation CE per token",
      curves)]
  if all(h.step_ms(c) is not None for c in h.curves):
    minutes = {model_name(c): [[(step * h.step_ms(c) / 60000.0, ce)
                                for step, ce in curve] for curve in per_seed]
               for c, per_seed in h.curves.items()}
    written.append(plots.mean_curves(
        os.path.join(h.folder, WALLCLOCK_PLOT), h.label,
        "validation CE per token", minutes,
        xlabel="minutes at the measured step time (model step, idle)"))
  points = []
  for config in h.curves:
    summary = h.final_interval(config)
    if config != h.dense and summary:
      low, high = summary["low"], summary["high"]
      points.append((target.experts(config), summary["mean"],
                     summary["mean"] if low is None else low,
                     summary["mean"] if high is None else high))
  dense = h.final_interval(h.dense)
  reference = None
  if dense:
    reference = (model_name(h.dense), dense["mean"],
                 dense["low"] if dense["low"] is not None else dense["mean"],
                 dense["high"] if dense["high"] is not None else dense["mean"])
  written.append(plots.intervals(
      os.path.join(h.folder, EXPERTS_PLOT),
      "Final validation CE (mean, 95% t-interval over seeds)",
      "experts (FLOP-matched to dense)", "validation CE per token", points,
      reference, logx=True))
  return written


def figure_lines(h: Headline, link_prefix: str) -> List[str]:
  """Image links to the plots in h.folder, each link_prefix + file name."""
  names = ((CURVES_PLOT, "validation CE against steps"),
           (WALLCLOCK_PLOT, "validation CE against wall-clock"),
           (EXPERTS_PLOT, "final validation CE against experts"))
  return ["![%s](%s%s)" % (alt, link_prefix, name) for name, alt in names
          if h.any_runs and os.path.exists(os.path.join(h.folder, name))]


def write(store: store_lib.ResultStore, out_dir: str,
          speed_dir: str) -> str:
  """Writes out_dir/summary.md, the plots and analysis.json.

  speed_dir: the speed results, whose whole-step times give the
  wall-clock axis. The pilots, if any, are out_dir/pilots.json.
  """
  entries = dict(store.items())
  h = Headline(entries, out_dir, speed_dir)
  write_plots(h)
  md = ["# The headline claim at small scale (issue 18)", "",
        "Generated by tools/bench.py from %s: %s and FLOP-matched %s "
        "with E experts, batch 32 x 128/32 tokens of "
        "wiki_large_span_corruption, the same data order for the same seed, "
        "validation CE per target token on a fixed 1,600-example validation "
        "set at every checkpoint. Commands:" % (
            os.path.basename(store.path),
            os.path.basename(headline.PROTOCOL.dense_gin)[:-len(".gin")],
            os.path.basename(headline.PROTOCOL.switch_gin)[:-len(".gin")]),
        ""]
  md += ["- `%s` (%s)" % (c["command"], c["started"]) for c in store.commands]
  md += ["", "Wall-clock plots put each checkpoint at its step times the "
         "model's whole training step as the speed benchmark measured it on "
         "the idle machine (../speed/models.json; the input pipeline "
         "excluded), since these runs shared the machine.", "",
         "Speed-up = dense's steps / the first step (linear "
         "interpolation between checkpoints) at which the Switch curve "
         "reaches dense's final validation CE, same seed; geometric mean "
         "with a 95% t-interval over seeds, given only when every seed "
         "reached it. With one seed there is no interval.", "",
         "## " + h.label, ""]
  md += table_lines(h) + [""] + figure_lines(h, "") + [""]
  md += ["## The candidates' pilot rules", ""] + pilot_rule_lines(h) + [""]
  md += ["## Target", ""] + target_lines(h) + [""]
  md += ["## Extrapolation", ""] + extrapolation_lines(h) + [""]
  md += ["## Time of the runs", ""] + time_lines(h) + [""]
  md += ["## A setting for `make demo`", ""] + demo_lines(h) + [""]
  md += ["## Distillation (paper Table 6)", "",
         "tools/bench.py --parts=headline_distill, after the grid; "
         "switch_mtf/bench/claims/headline_distill.py says how the teacher "
         "is chosen and why each row is configured as it is.", ""]
  md += distill_lines(h) + [""]
  pilots_path = os.path.join(out_dir, PILOTS_FILE)
  if os.path.exists(pilots_path):
    md += ["## Pilots", "", "The runs the protocol was chosen by "
           "(switch_mtf/bench/claims/headline.py says how); stored in %s."
           % PILOTS_FILE, ""]
    md += pilot_lines(store_lib.ResultStore(pilots_path)) + [""]
  md += ["## Provenance", "",
         "Each run's commit and the load of other processes while it "
         "trained (its steps/s are not timings: step times come from the "
         "side-by-side speed benchmark); a run whose code or gin files "
         "changed since is stale.", ""]
  md += provenance.report_lines(sorted(entries.items()))
  return claims_report.write_summary(out_dir, md, h.analysis())
