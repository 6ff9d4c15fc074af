"""results/headline/summary.md: the headline experiment, as the paper shows it.

Per protocol: validation CE against steps (mean over seeds), the final CE
of each model with its paired difference to dense (95% t-interval over
seeds, "not significant" when it contains 0), and the steps each Switch
model needs to reach dense's final CE, as a speed-up with its interval or
"not reached" (claims/analysis.py computes all of these).
"""

import os
import re
from typing import Any, Dict, List

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import formatting
from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import report as claims_report
from switch_mtf.bench.common import plots
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import store as store_lib

_EXPERTS = re.compile(r"switch_E(\d+)")
PILOTS_FILE = "pilots.json"


def analyze(plan: Dict[str, List[Any]],
            entries: Dict[str, Any]) -> Dict[str, Any]:
  """Protocol -> claims_analysis.sample_efficiency of its runs."""
  return {label: claims_analysis.sample_efficiency(
      runs, entries, headline.dense_config(runs))
          for label, runs in plan.items()
          if any(r.name in entries for r in runs)}


def _table(result: Dict[str, Any]) -> List[str]:
  md = ["| model | seeds | val CE, final (mean ± std) | − dense, paired: "
        "mean [95% CI] | steps to dense's final val CE: speed-up [95% CI] |",
        "|---|---|---|---|---|"]
  for config, row in result["configs"].items():
    md.append("| %s | %d | %s | %s | %s |" % (
        _model(config), row.get("seeds_done", 0),
        formatting.mean_std(row.get("val_ce"), 3),
        formatting.interval(row.get("val_ce_minus_dense"), 3)
        if config != result["dense"] else "–",
        formatting.speedup(row.get("speedup_val"))
        if config != result["dense"] else "–"))
  return md


def _model(config: str) -> str:
  found = _EXPERTS.search(config)
  return "Switch E%s" % found.group(1) if found else "dense (t5_tiny)"


def _spec_name(model: str) -> str:
  """The speed benchmark's name of a report model (see model_step)."""
  found = re.fullmatch(r"Switch E(\d+)", model)
  return "switch_tiny_E%s" % found.group(1) if found else "t5_tiny"


def step_times(speed_dir: str) -> Dict[str, float]:
  """Spec name -> median ms of a whole training step, measured side by side.

  From the speed benchmark's whole-model entries (results/speed/
  models.json), the entry with the most models; empty if none is stored.
  """
  path = os.path.join(speed_dir, "models.json")
  if not os.path.exists(path):
    return {}
  entries = store_lib.ResultStore(path).items()
  best = max((e["models"] for _, e in entries), key=len, default={})
  return {name: model["median_ms"] for name, model in best.items()}


def _plots(label: str, runs: List[Any], entries: Dict[str, Any],
           out_dir: str, index: int, times: Dict[str, float]) -> List[str]:
  """Validation CE against steps and, where step times exist, minutes."""
  curves: Dict[str, List] = {}
  for config, pairs in claims_analysis.group(runs, entries).items():
    if pairs:  # models with a finished run
      curves[_model(config)] = [claims_execute.val_curve(e)
                                for _, e in pairs]
  names = [os.path.basename(plots.mean_curves(
      os.path.join(out_dir, "val_ce_%d.png" % index),
      label, "validation CE per token", curves))]
  if all(_spec_name(model) in times for model in curves):
    minutes = {model: [[(step * times[_spec_name(model)] / 60000.0, ce)
                        for step, ce in curve] for curve in per_seed]
               for model, per_seed in curves.items()}
    names.append(os.path.basename(plots.mean_curves(
        os.path.join(out_dir, "val_ce_wallclock_%d.png" % index),
        label, "validation CE per token", minutes,
        xlabel="minutes at the measured step time (model step, idle)")))
  return names


def pilot_lines(pilots: store_lib.ResultStore) -> List[str]:
  """The pilot runs the protocol was chosen by, as stored (pilots.json).

  A pilot may be stale: it informed the choice of protocol, and no
  reported comparison uses it.
  """
  md = ["| pilot | checkpoint every | validation CE at each checkpoint | "
        "drop over the last 1000 steps | stale? |", "|---|---|---|---|---|"]
  for name, entry in pilots.items():
    curve = claims_execute.val_curve(entry)
    last = curve[-1][0] if curve else 0
    before = [ce for step, ce in curve if step == last - 1000]
    md.append("| %s | %d | %s | %s | %s |" % (
        name, entry["run"]["checkpoint_every"],
        ", ".join("%d: %.3f" % point for point in curve),
        "%.3f" % (before[0] - curve[-1][1]) if before else "–",
        "; ".join(provenance.stale_reasons(entry.get("provenance")))
        or "no"))
  return md


def write(store: store_lib.ResultStore, out_dir: str,
          speed_dir: str) -> str:
  """Writes out_dir/summary.md, the plots and analysis.json.

  speed_dir: the speed results, whose whole-step times give the
  wall-clock axis. The pilots, if any, are out_dir/pilots.json.
  """
  entries = dict(store.items())
  times = step_times(speed_dir)
  plan = headline.plan()
  result = analyze(plan, entries)
  md = ["# The headline claim at small scale (issue 18)", "",
        "Generated by tools/bench.py from %s: t5_tiny and FLOP-matched "
        "switch_tiny with E experts, batch 32 x 128/32 tokens of "
        "wiki_large_span_corruption, the same data order for the same seed, "
        "validation CE per target token on a fixed 1,600-example validation "
        "set at every checkpoint. Commands:" % os.path.basename(store.path),
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
         "reached it. With one seed there is no interval.", ""]
  for index, (label, runs) in enumerate(plan.items()):
    if label not in result:
      continue
    md += ["## " + label, ""] + _table(result[label]) + [""]
    md += ["![%s](%s)" % (label, name)
           for name in _plots(label, runs, entries, out_dir, index, times)]
    md += [""]
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
  return claims_report.write_summary(out_dir, md, result)
