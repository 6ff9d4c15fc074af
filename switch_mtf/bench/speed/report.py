"""Markdown summary and plots of the speed results (results/speed/)."""

import os
import re
from typing import Any, Dict, List, Optional, Tuple

from switch_mtf.bench.common import plots
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import stats
from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.speed import cluster as cluster_bench
from switch_mtf.bench.speed import layer_graph
from switch_mtf.bench.speed import layers as speed
from switch_mtf.bench.speed import timing

SWITCH_OVER_DENSE_TARGET = 1.3


def _fmt(value: Optional[float], digits: int = 2) -> str:
  return "–" if value is None else "%.*f" % (digits, value)


def _commands(*stores: store_lib.ResultStore) -> List[str]:
  lines = []
  for s in stores:
    for c in s.commands:
      lines.append("- `%s` (%s, %s)" % (c["command"], c["started"],
                                        os.path.basename(s.path)))
  return lines


def layer_section(store: store_lib.ResultStore, out_dir: str) -> List[str]:
  """Main blocks: every kind per (E, cf), ratios and the issue's targets."""
  md = ["## Layer forward+backward, one block per (experts, capacity factor)",
        "",
        "4096 tokens (32 x 128), d_model 256, expert hidden = dense d_ff = "
        "1024, float32, group size 1024; SGD step (fused, one "
        "ApplyGradientDescent per weight) on sum(y*T)/N + aux. "
        "Median of the block's round-robin runs; ratios within a block.",
        "",
        "The roofline is max(executed FLOPs / the block's best matmul, "
        "estimated bytes moved / its best STREAM-style add), "
        "`flops.roofline_ms`; blocks timed before the bandwidth probe "
        "existed show –.",
        "",
        "| block | layer | median ms | fwd ms | x dense | x MoE1D(switch) | "
        "useful GFLOP/s | % of matmul probe | executed % of probe | "
        "x roofline (bound) |",
        "|---|---|---|---|---|---|---|---|---|---|"]
  targets = []
  bar_groups, bar_series = [], {k: [] for k in speed.MOE_KINDS}
  blocks = [(name, result) for name, result in store.items()
            if name.startswith("layers/")]
  for name, result in sorted(blocks, key=lambda item: _block_order(item[0])):
    rows = speed.derived(result)
    block = name[len("layers/"):]
    bar_groups.append(block)
    for label, row in sorted(rows.items(), key=lambda item: _kind_order(
        result["contenders"][item[0]])):
      entry = result["contenders"][label]
      md.append("| %s | %s | %s | %s | %s | %s | %.0f | %.0f%% | %.0f%% | %s |"
                % (block, entry["spec"]["kind"], _fmt(row["median_ms"], 1),
                   _fmt(entry.get("forward_ms"), 1), _fmt(row.get("x_dense")),
                   _fmt(row.get("x_moe1d_switch")), row["useful_gflops"],
                   100 * row["useful_fraction_of_probe"],
                   100 * row["executed_fraction_of_probe"],
                   "%.2f (%s)" % (row["x_roofline"], row["bound"])
                   if "x_roofline" in row else "–"))
      kind = entry["spec"]["kind"]
      if kind in bar_series:
        bar_series[kind].append(row.get("x_dense") or 0.0)
    targets.append(_targets(block, result, rows))
    md.append("| %s | matmul probe | | | | | %.0f | 100%% | | |" % (
        block, result["probe_gflops"]))
    if "bandwidth_gbs" in result:
      md.append("| %s | STREAM add probe: %.1f GB/s | | | | | | | | |" % (
          block, result["bandwidth_gbs"]))
  if bar_groups:
    path = plots.bars(os.path.join(out_dir, "layer_x_dense.png"),
                      "Layer fwd+bwd time / FLOP-matched dense FFN",
                      "x dense", bar_groups, bar_series, hline=1.0)
    md += ["", "![x dense](%s)" % os.path.basename(path)]
  md += ["", "### Targets of issue 8", "",
         "| block | einsum / MoE1D (target <= 1) | gather / MoE1D (target < 1) "
         "| Switch gather / dense (target <= 1.3 at cf 1.0) | Switch einsum / "
         "dense |", "|---|---|---|---|---|"] + [t for t in targets if t]
  return md


def _block_order(name: str) -> Tuple[float, ...]:
  """layers/E8/cf1.25 -> (8, 1.25): blocks by experts, then cf.

  The store keeps its entries sorted as text (E128 before E8).
  """
  return tuple(float(re.sub(r"^[A-Za-z]+", "", part))
               for part in name.split("/")[1:])


def _kind_order(entry: Dict[str, Any]) -> int:
  return layer_graph.KINDS.index(entry["spec"]["kind"])


def _targets(block: str, result: Dict[str, Any],
             rows: Dict[str, Dict[str, float]]) -> str:
  by_kind = {result["contenders"][l]["spec"]["kind"]: r
             for l, r in rows.items()}
  einsum = by_kind.get(layer_graph.SWITCH_EINSUM, {})
  gather = by_kind.get(layer_graph.SWITCH_GATHER, {})
  def verdict(value, limit, strict=False):
    if value is None:
      return "–"
    ok = value < limit if strict else value <= limit
    return "%.2f %s" % (value, "yes" if ok else "**no**")
  return "| %s | %s | %s | %s | %s |" % (
      block, verdict(einsum.get("x_moe1d_switch"), 1.0),
      verdict(gather.get("x_moe1d_switch"), 1.0, strict=True),
      verdict(gather.get("x_dense"), SWITCH_OVER_DENSE_TARGET),
      _fmt(einsum.get("x_dense")))


def sweep_section(store: store_lib.ResultStore, out_dir: str, prefix: str,
                  axis: str, title: str) -> List[str]:
  """Group-size or tokens sweep: ms per point per kind, fits, a plot."""
  md = []
  for name, result in store.items():
    if not name.startswith(prefix):
      continue
    series: Dict[str, List] = {}
    per_token: Dict[str, List] = {}
    for entry in sorted(result["contenders"].values(), key=_kind_order):
      spec = entry["spec"]
      x = (spec["group_size"] if axis == "group_size"
           else spec["batch"] * spec["length"])
      if axis == "group_size" and spec["kind"] == layer_graph.DENSE:
        continue
      series.setdefault(spec["kind"], []).append((x, entry["median_ms"]))
      per_token.setdefault(spec["kind"], []).append(
          (x, 1e3 * entry["median_ms"] / (spec["batch"] * spec["length"])))
    dense = [e for e in result["contenders"].values()
             if e["spec"]["kind"] == layer_graph.DENSE]
    md += ["## %s (%s)" % (title, name), "",
           "| layer | " + " | ".join("%s=%d" % (axis, x) for x, _ in
                                    sorted(next(iter(series.values()))))
           + " | linear fit ms = a + b*x | R^2 | log-log slope |",
           "|---|" + "---|" * (len(next(iter(series.values()))) + 3)]
    for kind, points in series.items():
      points = sorted(points)
      fit = stats.linear_fit([p[0] for p in points], [p[1] for p in points])
      md.append("| %s | %s | %.1f + %.4f x | %.3f | %.2f |" % (
          kind, " | ".join("%.1f" % y for _, y in points), fit["intercept"],
          fit["slope"], fit["r2"],
          stats.log_log_slope([p[0] for p in points],
                              [p[1] for p in points])))
    if axis == "group_size" and dense:
      md.append("| dense (no groups) | %.1f ms |" % dense[0]["median_ms"])
    path = plots.lines(
        os.path.join(out_dir, "%s.png" % prefix.strip("/")),
        title, axis, "fwd+bwd ms", series, logx=True,
        logy=(axis == "tokens"))
    md += ["", "![%s](%s)" % (title, os.path.basename(path))]
    if axis == "tokens":
      path = plots.lines(
          os.path.join(out_dir, "tokens_per_token.png"),
          "Cost per token vs tokens per call (flat = linear growth)",
          "tokens", "us per token", per_token, logx=True)
      md += ["", "![per token](%s)" % os.path.basename(path)]
    md.append("")
  return md


def model_section(store: store_lib.ResultStore, out_dir: str) -> List[str]:
  md = []
  for name, result in store.items():
    models = result["models"]
    base = models.get("t5_tiny")
    md += ["## Whole training step: %s" % name, "",
           "Forward + backward + Adafactor update of the whole bitransformer "
           "(batch 32 x 128/32 tokens, no input pipeline), round-robin in "
           "one process.", "",
           "| model | activations | params | expert params | step ms (median) "
           "| x t5_tiny |", "|---|---|---|---|---|---|"]
    points_ms, points_params = [], []
    # Smallest first (the store keeps its entries sorted as text).
    for model_name, entry in sorted(models.items(), key=lambda item: (
        item[1]["params"], item[0])):
      ratio = (entry["median_ms"] / base["median_ms"]) if base else None
      md.append("| %s | %s | %.2fM | %.2fM | %.1f | %s |" % (
          model_name, entry["spec"].get("activation_dtype", "float32"),
          entry["params"] / 1e6, entry["expert_params"] / 1e6,
          entry["median_ms"], _fmt(ratio)))
      experts = _experts_of(entry)
      if experts and "gather" not in model_name:
        points_ms.append((experts, entry["median_ms"]))
        points_params.append((experts, entry["params"] / 1e6))
    if len(set(experts for experts, _ in points_ms)) > 1:
      path = plots.lines(os.path.join(out_dir, "experts_doubling.png"),
                         "switch_tiny: experts doubling at fixed FLOPs/token",
                         "experts", "value",
                         {"step ms": points_ms, "params (M)": points_params},
                         logx=True, logy=True,
                         styles={"step ms": ("tab:blue", "o"),
                                 "params (M)": ("tab:orange", "s")})
      md += ["", "![experts doubling](%s)" % os.path.basename(path)]
    md.append("")
  return md


def _experts_of(entry: Dict[str, Any]) -> Optional[int]:
  for param in entry["spec"]["gin_params"]:
    if param.startswith("num_experts ="):
      return int(param.split("=")[1])
  return None


def paper_section(store: store_lib.ResultStore) -> List[str]:
  md = ["## The paper's models on TPU layouts (computed, not run)", "",
        "Weights + Adafactor state per device from "
        "switch_mtf/analysis/model_stats.py "
        "(activations not counted); all-to-all traffic computed from the "
        "layout: per MoE layer and microbatch, 4 x groups x experts x "
        "capacity x d_model bfloat16 values (dispatch + combine, forward + "
        "backward).", "",
        "| model | mesh | params | weights+Adafactor GiB/device | MoE layers "
        "| microbatches | all-to-all GiB/step | MiB/device/step |",
        "|---|---|---|---|---|---|---|---|"]
  for _, entry in store.items():
    if "error" in entry:
      md.append("| %s | – | error: %s |" % (entry["label"], entry["error"]))
      continue
    md.append("| %s | %s | %.2fB | %.2f | %d | %d | %.2f | %.1f |" % (
        entry["label"], entry["mesh_shape"], entry["params"] / 1e9,
        entry["total_gib_per_device"], entry["moe_layer_count"],
        entry["num_microbatches"], entry["all_to_all_gib_per_step"],
        entry["all_to_all_mib_per_device_per_step"]))
  return md + [""]


def _profile_load(entry: Dict[str, Any]) -> str:
  load = entry.get("load")
  if not load:
    return ("Load not recorded (profiled before the profile refused a busy "
            "machine).")
  return ("Other processes' CPU share meanwhile: %.1f%% mean, %.1f%% max "
          "(a profile above %.0f%% is discarded and retried)." % (
              100 * load["other_cpu_share_mean"],
              100 * load["other_cpu_share_max"],
              100 * timing.MAX_OTHER_CPU_SHARE))


def profile_section(store: store_lib.ResultStore) -> List[str]:
  md = []
  for name, entry in store.items():
    md += ["## Profile: %s" % name, "",
           "Sum of TF op times per step (ops overlap across threads, so the "
           "sum can exceed the wall time): %.1f ms. %s" % (
               entry["op_time_ms_per_step"], _profile_load(entry)), "",
           "| op type | ms/step |", "|---|---|"]
    md += ["| %s | %.1f |" % (n, ms) for n, ms in entry["by_op_type"][:8]]
    md += ["", "| op | ms/step |", "|---|---|"]
    md += ["| `%s` | %.1f |" % (n, ms) for n, ms in entry["by_op"][:12]]
    md.append("")
  return md


def write(stores: Dict[str, store_lib.ResultStore], out_dir: str) -> str:
  """Writes out_dir/summary.md (+ PNGs); returns its path."""
  md = ["# Speed results", "",
        "Generated by tools/bench.py from the JSON files in this folder. "
        "Commands that produced them:", ""]
  md += _commands(*stores.values()) + [""]
  if "layers" in stores:
    md += layer_section(stores["layers"], out_dir)
    md += [""] + sweep_section(stores["layers"], out_dir, "group_size/",
                               "group_size", "Cost vs group size")
    md += sweep_section(stores["layers"], out_dir, "tokens/", "tokens",
                        "Cost vs tokens per call")
  if "models" in stores:
    md += model_section(stores["models"], out_dir)
  if "paper" in stores:
    md += paper_section(stores["paper"])
  if "profile" in stores:
    md += profile_section(stores["profile"])
  if "cluster" in stores:
    md += cluster_bench.section(sorted(stores["cluster"].items()))
  md += ["", "## Provenance and load", "",
         "Each stored result's commit and the CPU share other processes used "
         "while it was timed (a timing above %.0f%% is discarded and "
         "repeated); a result whose code or gin files changed since is "
         "stale (`tools/bench.py --rerun_stale` measures it again)."
         % (100 * timing.MAX_OTHER_CPU_SHARE), ""]
  md += provenance.report_lines(
      (name + ": " + key, entry) for name, results in stores.items()
      for key, entry in sorted(results.items()))
  path = os.path.join(out_dir, "summary.md")
  with open(path, "w") as f:
    f.write("\n".join(md) + "\n")
  return path
