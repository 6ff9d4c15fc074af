"""docs/checkpoints.md's measured sections, from the committed results.

Conversion speed and memory come from results/checkpoints/conversion_bench.json
(tools/conversion_bench.py), sparse upcycling from results/upcycle/runs.json
(tools/upcycle_experiment.py); both files carry their provenance.
"""

import json
import os
from typing import Any, Dict, List

from switch_mtf.bench.checkpoints import conversion_bench
from switch_mtf.bench.checkpoints import upcycling
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import store as store_lib

CONVERSION_FILE = os.path.join("checkpoints", "conversion_bench.json")
UPCYCLE_FILE = os.path.join("upcycle", "runs.json")
_DIRECTIONS = ("hf_to_mtf", "mtf_to_hf")


def conversion(results_dir: str) -> List[str]:
  """The benchmark's table, its targets met or not, and where it ran."""
  path = os.path.join(results_dir, CONVERSION_FILE)
  if not os.path.exists(path):
    return ["Not measured yet: `python tools/conversion_bench.py "
            "--num_experts=8,16,32` on an idle machine."]
  with open(path) as f:
    results = json.load(f)
  record = results["provenance"]
  measured = [run[d] for run in results["runs"].values() for d in _DIRECTIONS]
  share = max(m["load"]["other_cpu_share_mean"] for m in measured)
  lines = ["Measured %s at commit %s%s on %s (%d cores) by `%s`; other "
           "processes' mean CPU share during each conversion: at most %.1f%%."
           % (record["recorded"][:10], record["commit"][:10],
              " (dirty)" if record["dirty"] else "",
              record["machine"]["cpu_model"], record["machine"]["cores"],
              record["command"], 100 * share)]
  stale = provenance.stale_reasons(record)
  if stale:
    lines += ["", "**Stale**: %s; rerun the command." % "; ".join(stale)]
  # Smallest model first (the file keeps its keys sorted as strings).
  table = conversion_bench.summary_lines(dict(results, runs=dict(sorted(
      results["runs"].items(), key=lambda item: item[1]["parameters"]))))
  rows = [line for line in table if line.startswith("|")]
  fits = [line for line in table if not line.startswith("|")]
  lines += [""] + rows + [""] + ["- " + fit for fit in fits] + [""]
  lines += _targets(results, measured)
  return lines


def _targets(results: Dict[str, Any], measured: List[Dict[str, Any]]
             ) -> List[str]:
  target = results["target_mb_per_second"]
  slowest = min(m["mb_per_second_written"] for m in measured)
  fit = results.get("scaling") or {}
  memory = all(m["meets_memory_target"] for m in measured) and all(
      fit[d]["meets_memory_target"] for d in _DIRECTIONS if d in fit)
  return [
      "- Speed, at least %.0f MB/s written (whole process, interpreter and "
      "TensorFlow import included): slowest %.1f MB/s: **%s**."
      % (target, slowest, "met" if all(m["meets_speed_target"]
                                       for m in measured) else "not met"),
      "- Memory, peak RSS at most twice the largest tensor plus 1 GB, in "
      "every measured model%s: **%s**." % (
          " and as extrapolated to switch-base-%d"
          % fit["extrapolated_to"]["num_experts"] if fit else "",
          "met" if memory else "not met")]


def upcycling_lines(results_dir: str) -> List[str]:
  """The upcycling experiment's table and paired gains, with provenance."""
  path = os.path.join(results_dir, UPCYCLE_FILE)
  if not os.path.exists(path):
    return ["Not measured yet: `python tools/upcycle_experiment.py` (3 seeds; "
            "writes results/upcycle/)."]
  store = store_lib.ResultStore(path)
  config = upcycling.Config(**{
      k: tuple(v) if isinstance(v, list) else v
      for k, v in store.meta["config"].items()})
  text = upcycling.report(upcycling.summary(store, config.seeds), config,
                          store.commands)
  body = text.splitlines()[2:]  # without the report's title
  return body + ["", "Provenance of each run:", ""] + provenance.report_lines(
      sorted(store.items()))
