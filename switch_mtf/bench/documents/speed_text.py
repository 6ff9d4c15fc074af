"""Document sections from the speed results (results/speed/*.json).

Every number is read from a stored block or derived from one with the
bench's own arithmetic (layers.derived); every ratio compares contenders
timed round-robin in the same block.
"""

import os
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import stats
from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.speed import cluster as cluster_bench
from switch_mtf.bench.speed import layer_graph
from switch_mtf.bench.speed import layers as speed
from switch_mtf.bench.speed import timing

# The performance targets (ratios in one block, idle machine).
GATHER_OVER_DENSE_TARGET = 1.2  # Switch gather E8 cf 1.0 vs dense
STEP_OVER_DENSE_TARGET = 1.1  # whole switch_tiny step vs t5_tiny
ROOFLINE_TARGET = 1.3  # every Switch block vs its own roofline
SWITCH_KINDS = (layer_graph.SWITCH_GATHER, layer_graph.SWITCH_EINSUM)
_SHORT_BLOCKS = ("layers/E8/cf1.0", "layers/E8/cf1.25", "layers/E32/cf1.0",
                 "layers/E128/cf1.0")


class SpeedResults:
  """The stored speed suites, read-only."""

  def __init__(self, folder: str):
    self.stores = {}
    for name in ("layers", "models", "paper", "profile"):
      path = os.path.join(folder, name + ".json")
      if not os.path.exists(path):
        raise FileNotFoundError(
            "%s is missing; run `python tools/bench.py --parts=speed,models,"
            "paper,profile` (or restore it from git)." % path)
      self.stores[name] = store_lib.ResultStore(path)
    # Measured since issue 20; absent from older result folders.
    cluster_path = os.path.join(folder, "cluster.json")
    self.cluster = (store_lib.ResultStore(cluster_path)
                    if os.path.exists(cluster_path) else None)

  def blocks(self) -> List[Tuple[str, Dict[str, Any]]]:
    """The (E, cf) blocks, fewest experts first."""
    items = [(n, r) for n, r in self.stores["layers"].items()
             if n.startswith("layers/")]
    return sorted(items, key=lambda item: _block_key(item[0]))

  def block(self, name: str) -> Dict[str, Any]:
    result = self.stores["layers"].get(name)
    if result is None:
      raise KeyError("results/speed/layers.json has no block %r" % name)
    return result


def _block_key(name: str) -> Tuple[float, ...]:
  return tuple(float(re.sub(r"^[A-Za-z]+", "", p))
               for p in name.split("/")[1:])


def _block_label(name: str) -> str:
  """layers/E8/cf1.0 -> "8, 1.0"."""
  experts, cf = name.split("/")[1:3]
  return "%s, %s" % (experts[1:], cf[2:])


def by_kind(result: Dict[str, Any]) -> Dict[str, Dict[str, float]]:
  """A block's derived rows keyed by layer kind."""
  rows = speed.derived(result)
  return {result["contenders"][label]["spec"]["kind"]: row
          for label, row in rows.items()}


def _f(value: Optional[float], digits: int = 2) -> str:
  return "–" if value is None else "%.*f" % (digits, value)


def _range(values: Sequence[float], digits: int = 2) -> str:
  return "%.*f–%.*f" % (digits, min(values), digits, max(values))


def _share(load: Optional[Dict[str, Any]]) -> str:
  if not load or "other_cpu_share_mean" not in load:
    return "not recorded"
  return "%.1f%%" % (100 * load["other_cpu_share_mean"])


def layer_table(results: SpeedResults) -> List[str]:
  """Every (E, cf) block: ratios to dense and MoE1D, roofline, load."""
  lines = [
      "| E, cf (G = 1024) | Switch gather / dense | Switch einsum / dense | "
      "MoE1D switch / dense | top-2 / dense | einsum / MoE1D | gather / "
      "MoE1D | gather / roofline | einsum / roofline | other processes' CPU "
      "share |", "|---|---|---|---|---|---|---|---|---|---|"]
  for name, result in results.blocks():
    rows = by_kind(result)
    get = lambda kind, key: rows.get(kind, {}).get(key)  # pylint: disable=cell-var-from-loop
    lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        _block_label(name), _f(get(layer_graph.SWITCH_GATHER, "x_dense")),
        _f(get(layer_graph.SWITCH_EINSUM, "x_dense")),
        _f(get(layer_graph.MOE1D_SWITCH, "x_dense")),
        _f(get(layer_graph.MOE1D_TOP2, "x_dense")),
        _f(get(layer_graph.SWITCH_EINSUM, "x_moe1d_switch")),
        _f(get(layer_graph.SWITCH_GATHER, "x_moe1d_switch")),
        _roof(rows.get(layer_graph.SWITCH_GATHER)),
        _roof(rows.get(layer_graph.SWITCH_EINSUM)), _share(result.get("load"))))
  return lines


def _roof(row: Optional[Dict[str, Any]]) -> str:
  if not row or "x_roofline" not in row:
    return "–"
  return "%.2f (%s)" % (row["x_roofline"], row["bound"])


def short_layer_table(results: SpeedResults) -> List[str]:
  """The README's four blocks."""
  lines = ["| experts, capacity factor | Switch (gather) | Switch (einsum, the "
           "paper's) | Mesh TF `MoE1D` switch | `MoE1D` top-2 |",
           "|---|---|---|---|---|"]
  for name in _SHORT_BLOCKS:
    rows = by_kind(results.block(name))
    lines.append("| %s | %s | %s | %s | %s |" % (
        _block_label(name),
        _f(rows[layer_graph.SWITCH_GATHER]["x_dense"]),
        _f(rows[layer_graph.SWITCH_EINSUM]["x_dense"]),
        _f(rows[layer_graph.MOE1D_SWITCH]["x_dense"]),
        _f(rows[layer_graph.MOE1D_TOP2]["x_dense"])))
  return lines


def _met(ok: bool) -> str:
  return "**met**" if ok else "**not met**"


def step_ratios(results: SpeedResults, model: str) -> List[Tuple[str, float]]:
  """(entry, a tiny model's step time over t5_tiny's in that entry)."""
  out = []
  for key, entry in results.stores["models"].items():
    models = entry["models"]
    if model in models and "t5_tiny" in models:
      out.append((key, models[model]["median_ms"]
                  / models["t5_tiny"]["median_ms"]))
  return out


def gather_model_name(results: SpeedResults) -> Optional[str]:
  for _, entry in results.stores["models"].items():
    for name in entry["models"]:
      if name.startswith("switch_tiny") and name.endswith("gather"):
        return name
  return None


def targets(results: SpeedResults) -> List[str]:
  """The performance targets, each with its measured value and verdict."""
  lines = []
  e8 = by_kind(results.block("layers/E8/cf1.0"))
  gather = e8[layer_graph.SWITCH_GATHER]["x_dense"]
  lines.append(
      "- Switch (gather) at 8 experts, capacity factor 1.0: %.2f× the "
      "FLOP-matched dense FFN (target ≤ %.1f×): %s." % (
          gather, GATHER_OVER_DENSE_TARGET,
          _met(gather <= GATHER_OVER_DENSE_TARGET)))
  model = gather_model_name(results)
  ratios = step_ratios(results, model) if model else []
  if ratios:
    lines.append(
        "- Whole training step, `%s` / `t5_tiny` (float32): %s (target ≤ "
        "%.1f×): %s." % (model, ", ".join(
            "%.2f× in entry `%s`" % (r, key) for key, r in ratios),
                         STEP_OVER_DENSE_TARGET, _met(all(
                             r <= STEP_OVER_DENSE_TARGET
                             for _, r in ratios))))
  einsum_vs_moe1d, over_roof, roofs = [], [], []
  for name, result in results.blocks():
    rows = by_kind(result)
    einsum_vs_moe1d.append(rows[layer_graph.SWITCH_EINSUM]["x_moe1d_switch"])
    for kind in SWITCH_KINDS:
      if "x_roofline" in rows[kind]:
        roofs.append(rows[kind]["x_roofline"])
        if rows[kind]["x_roofline"] > ROOFLINE_TARGET:
          over_roof.append("%s %s %.2f× (%s-bound)" % (
              kind.replace("switch_", ""), _block_label(name),
              rows[kind]["x_roofline"], rows[kind]["bound"]))
  blocks = len(einsum_vs_moe1d)
  slower = sum(1 for r in einsum_vs_moe1d if r > 1.0)
  lines.append(
      "- Our einsum mode vs Mesh TF's `MoE1D`: %s of its time over the %d "
      "blocks (target ≤ 1 in every block): %s." % (
          _range(einsum_vs_moe1d), blocks, _met(slower == 0)))
  if roofs:
    lines.append(
        "- Switch time over its own roofline (both dispatch modes, %d "
        "measurements): %s (target ≤ %.1f×): %s%s." % (
            len(roofs), _range(roofs), ROOFLINE_TARGET, _met(not over_roof),
            "; above it: " + ", ".join(over_roof) if over_roof else ""))
  return lines


def _fits(result: Dict[str, Any], axis: str
          ) -> Dict[str, Tuple[Dict[str, float], List[Tuple[int, float]]]]:
  series: Dict[str, List[Tuple[int, float]]] = {}
  for entry in result["contenders"].values():
    spec = entry["spec"]
    tokens = spec["batch"] * spec["length"]
    if axis == "group_size":
      if spec["kind"] == layer_graph.DENSE:
        continue
      point = (spec["group_size"], entry["median_ms"])
    else:
      point = (tokens, 1e3 * entry["median_ms"] / tokens)
    series.setdefault(spec["kind"], []).append(point)
  out = {}
  for kind, points in series.items():
    points.sort()
    if axis == "group_size":
      fit = stats.linear_fit([x for x, _ in points], [y for _, y in points])
    else:  # fit total time, report per-token cost
      fit = stats.linear_fit([x for x, _ in points],
                             [x * y / 1e3 for x, y in points])
    out[kind] = (fit, points)
  return out


def _group_size_row(kind: str, fit: Dict[str, float], points) -> str:
  return "| %s | %.0f / %.0f (G = %d / %d) | %.4f | %.2f |" % (
      kind, points[0][1], points[-1][1], points[0][0], points[-1][0],
      fit["slope"], fit["r2"])


def _tokens_row(kind: str, fit: Dict[str, float], points) -> str:
  return "| %s | %.1f | %.3f | %.1f / %.1f |" % (
      kind, 1e3 * fit["slope"], fit["r2"], points[0][1], points[-1][1])


# Block name prefix -> (swept axis, title, table header, row).
_SWEEPS = {
    "group_size/": (
        "group_size", "Cost vs group size (%s, 4096 tokens; linear fit of ms "
        "against G):", "| layer | ms at smallest / largest G | slope, ms per "
        "token of G | R² |", _group_size_row),
    "tokens/": (
        "tokens", "Cost vs tokens per call (%s; linear fit of ms against "
        "tokens):", "| layer | µs per token (fit slope) | R² | µs per token "
        "at fewest / most tokens |", _tokens_row),
}


def sweeps(results: SpeedResults) -> List[str]:
  """Group-size and tokens sweeps: slopes and fits per layer kind."""
  lines = []
  for name, result in results.stores["layers"].items():
    for prefix, (axis, title, header, row) in _SWEEPS.items():
      if not name.startswith(prefix):
        continue
      fits = _fits(result, axis)
      lines += [title % name, "", header, "|---|---|---|---|"]
      lines += [row(kind, *fits[kind]) for kind in layer_graph.KINDS
                if kind in fits]
      lines.append("")
  return lines[:-1] if lines else ["No sweep blocks stored."]


def model_table(results: SpeedResults) -> List[str]:
  """Whole-step times of every stored model entry over its t5_tiny."""
  lines = ["| entry | model | activations | params | step / t5_tiny float32 |",
           "|---|---|---|---|---|"]
  for key, entry in results.stores["models"].items():
    models = entry["models"]
    base = models["t5_tiny"]["median_ms"]
    for name, model in sorted(models.items(),
                              key=lambda item: (item[1]["params"], item[0])):
      lines.append("| %s | %s | %s | %.2fM | %.2f |" % (
          key, name, model["spec"].get("activation_dtype", "float32"),
          model["params"] / 1e6, model["median_ms"] / base))
  return lines


def experts_doubling(results: SpeedResults) -> List[str]:
  """Parameters and step time from fewest to most experts (einsum)."""
  for key, entry in results.stores["models"].items():
    points = []
    for name, model in entry["models"].items():
      match = re.fullmatch(r"switch_tiny_E(\d+)", name)
      if match:
        points.append((int(match.group(1)), model))
    if len(points) > 1:
      points.sort()
      (lo, first), (hi, last) = points[0], points[-1]
      return ["- Going from %d to %d experts (`%s`, default dispatch) "
              "multiplies the parameters by %.1f and the step time by %.2f, "
              "at the same FLOPs per token." % (
                  lo, hi, key, last["params"] / first["params"],
                  last["median_ms"] / first["median_ms"])]
  return []


def paper_table(results: SpeedResults) -> List[str]:
  lines = ["| model | mesh | params | GiB/device (weights + Adafactor) | "
           "all-to-all GiB/step (all devices) | MiB/device/step |",
           "|---|---|---|---|---|---|"]
  for _, entry in results.stores["paper"].items():
    if "error" in entry:
      lines.append("| %s | – | error: %s | | | |" % (entry["label"],
                                                    entry["error"]))
      continue
    lines.append("| %s | %s | %.2fB | %.2f | %.1f | %.0f |" % (
        entry["label"], entry["mesh_shape"], entry["params"] / 1e9,
        entry["total_gib_per_device"], entry["all_to_all_gib_per_step"],
        entry["all_to_all_mib_per_device_per_step"]))
  return lines


def paper_summary(results: SpeedResults) -> List[str]:
  entries = dict(results.stores["paper"].items())
  out = []
  for label in ("Switch-Base (128)", "Switch-C (2048)"):
    entry = entries.get(label)
    if entry and "error" not in entry:
      out.append("%s on %s holds %.2f GiB of weights + Adafactor state per "
                 "core and moves %.2f GiB per core per step in all-to-all" % (
                     label, entry["mesh_shape"],
                     entry["total_gib_per_device"],
                     entry["all_to_all_mib_per_device_per_step"] / 1024))
  return ["- The paper's models on their TPU layouts (computed): " +
          "; ".join(out) + "."] if out else []


def profile_lines(results: SpeedResults, top: int = 5) -> List[str]:
  """The costliest op types of each profiled layer."""
  lines = ["| layer (cf 1.0, G 1024, 4096 tokens) | op time / step (ms) | "
           "costliest op types (ms/step) | other processes' CPU share "
           "(mean / max) |", "|---|---|---|---|"]
  def key(item):
    kind, experts = item[0].split("/")[:2]
    return (int(experts[1:]), layer_graph.KINDS.index(kind))
  unrecorded = 0
  for name, entry in sorted(results.stores["profile"].items(), key=key):
    kind, experts = name.split("/")[:2]
    load = entry.get("load")
    unrecorded += not load
    lines.append("| %s%s | %.1f | %s | %s |" % (
        kind, "" if kind == layer_graph.DENSE else ", %s" % experts,
        entry["op_time_ms_per_step"], ", ".join(
            "%s %.1f" % (op, ms) for op, ms in entry["by_op_type"][:top]),
        "%.1f%% / %.1f%%" % (100 * load["other_cpu_share_mean"],
                             100 * load["other_cpu_share_max"])
        if load else "not recorded"))
  if unrecorded:
    lines += ["", "%d of these profiles were taken before the profile "
              "sampled the load and refused a busy machine (a profile above "
              "%.0f%% is now discarded and retried); `python tools/bench.py "
              "--parts=profile --rerun_stale` takes them again." % (
                  unrecorded, 100 * timing.MAX_OTHER_CPU_SHARE)]
  return lines


# The second gradient of each expert product is the weight gradient, lowered
# from mtf.einsum or (runs since the fix) from expert_matmul.
_WEIGHT_GRADIENT = re.compile(
    r"/w[io]/(einsum/gradients/einsum|expert_matmul/gradients/expert_matmul)"
    r"_1/")


def profile_gap(results: SpeedResults) -> List[str]:
  """Where the many-expert steps lose time: the expert weight gradients.

  Their FLOPs do not depend on the number of experts (every token is one
  row of one expert's gradient), so their time at 128 experts against 8
  shows what the kernel does with many small matmuls.
  """
  entries = dict(results.stores["profile"].items())
  lines = []
  for kind in SWITCH_KINDS:
    few = entries.get("%s/E8/cf1.0/G1024/N4096" % kind)
    many = entries.get("%s/E128/cf1.0/G1024/N4096" % kind)
    if not few or not many:
      continue
    def weight_gradients(entry):
      return sum(ms for op, ms in entry["by_op"] if _WEIGHT_GRADIENT.search(op))
    at_few, at_many = weight_gradients(few), weight_gradients(many)
    if at_few <= 0:
      continue
    lines.append(
        "- %s: the two expert weight-gradient matmuls (`wi`, `wo`) take "
        "%.0f ms per step at 128 experts against %.0f ms at 8, for the same "
        "FLOPs (%.1f×); they are %.0f%% of the 128-expert step's op time." % (
            kind, at_many, at_few, at_many / at_few,
            100 * at_many / many["op_time_ms_per_step"]))
  return lines


def _stores_provenance(stores: Iterable[store_lib.ResultStore]
                       ) -> Dict[str, Any]:
  commits, dates, shares = set(), set(), []
  stale = missing = 0
  for store in stores:
    for _, entry in store.items():
      record = entry.get("provenance")
      if not record:
        missing += 1
        continue
      commits.add("%s%s" % ((record["commit"] or "?")[:10],
                            " (dirty)" if record["dirty"] else ""))
      dates.add(record["recorded"][:10])
      stale += bool(provenance.stale_reasons(record))
      load = entry.get("load") or {}
      if "other_cpu_share_mean" in load:
        shares.append(load["other_cpu_share_mean"])
  return {"commits": sorted(commits), "stale": stale, "missing": missing,
          "max_share": max(shares) if shares else None,
          "dates": sorted(dates)}


def provenance_lines(results: SpeedResults) -> List[str]:
  """Where the speed figures come from: commit, machine, load, staleness."""
  info = _stores_provenance(results.stores.values())
  meta = results.stores["layers"].meta
  lines = ["Measured %s at commit %s on %s (%s cores). Other processes' mean "
           "CPU share during each timed block or model entry: at most %s "
           "(a timing above %.0f%% is discarded and retried). Dirty marks a "
           "checkout with uncommitted edits outside results/; what keeps a "
           "result fresh is the hash of the code that produced it." % (
               ", ".join(info["dates"]) or "–",
               ", ".join(info["commits"]) or "–",
               meta.get("cpu_model", "?"), meta.get("cores", "?"),
               "%.1f%%" % (100 * info["max_share"])
               if info["max_share"] is not None else "not recorded",
               100 * timing.MAX_OTHER_CPU_SHARE)]
  if info["stale"] or info["missing"]:
    lines.append(
        "%d stored results are stale (their code or gin files changed "
        "since) and %d were recorded without provenance; "
        "results/speed/summary.md lists them." % (info["stale"],
                                                  info["missing"]))
  return lines


def cluster_traffic(results: SpeedResults) -> List[str]:
  """docs/cluster.md's measured table (results/speed/cluster.json)."""
  entries = sorted(results.cluster.items()) if results.cluster else []
  if not entries:
    return ["Not measured yet: `python tools/bench.py --parts=cluster` on an "
            "idle machine writes results/speed/cluster.json."]
  return cluster_bench.table_lines(entries)
