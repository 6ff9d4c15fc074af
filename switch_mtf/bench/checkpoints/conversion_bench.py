"""How fast conversions run and how much memory they take (a benchmark).

A synthetic Switch model with switch-base-8's shapes (the released
switch_classic base config with 8 experts; our embedded vocabulary's 8192
rows instead of 32128, the only SentencePiece model available offline) is
written as a Hugging Face folder in float32, as the Hub's google/switch-*
ports are, then converted both ways by tools/convert_checkpoint.py in
child processes: hf-to-mtf (to bfloat16, Mesh TF's default) and mtf-to-hf.
Each conversion reports MB read and written, the child's peak RSS (its
own ru_maxrss) and two times: `seconds`, the whole process (interpreter
start and the TensorFlow import included, a fixed few seconds), and
`conversion_seconds`, the conversion's own (the tool prints it), each with
its MB/s written, next to the issue's targets: at least 100 MB/s written,
peak RSS under 2x the largest tensor + 1 GB. Dirty pages are flushed
(sync) before each conversion, so none pays for writing back the files
made before it; `sync_seconds` is how long the conversion's own writes
then took to reach the disk. More expert counts give the scaling of peak
RSS with the largest tensor, extrapolated to switch-base-256.
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from switch_mtf.bench.common import provenance
from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import hf_config
from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import released
from switch_mtf.checkpoints import safetensors_file
from switch_mtf.checkpoints import tensor_plan
from switch_mtf.tasks import paths

VOCAB_ROWS = 8192  # the embedded SentencePiece model's embedding rows
CODE_PARTS = ("checkpoints",)
TARGET_MB_PER_SECOND = 100.0
# Bytes per parameter each direction reads: float32 HF weights (as the
# Hub's ports), the bfloat16 checkpoint back. The memory target counts the
# largest tensor in this dtype.
_READ_BYTES = {"hf_to_mtf": 4, "mtf_to_hf": 2}
EXTRAPOLATED_EXPERTS = 256  # switch-base-256: ~29 GB in bfloat16
# "wrote <dir> (<MB> MB in <seconds> s...": the tool's own time.
_TOOL_TIME = re.compile(r"^wrote .* MB in ([0-9.]+) s", re.MULTILINE)
_TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), "tools",
                     "convert_checkpoint.py")


def switch_base(num_experts: int) -> architecture.Architecture:
  """switch_classic/base with `num_experts` experts (and 8192 vocab rows)."""
  base = {r.name: r for r in released.SWITCH_CLASSIC}["switch_classic/base"]
  layers = released.sparse_layers(base.num_layers, base.every_ffn_sparse)
  return architecture.Architecture(
      vocab_size=VOCAB_ROWS, d_model=base.d_model, d_ff=base.d_ff,
      num_heads=base.num_heads, d_kv=base.d_kv,
      encoder=architecture.Stack(base.num_layers, layers),
      decoder=architecture.Stack(base.num_layers, layers),
      activation=base.activation, tied_embeddings=base.tied_embeddings,
      num_experts=num_experts, routing=base.routing)


def tiny(num_experts: int) -> architecture.Architecture:
  """A switch-base-shaped model small enough for a smoke test."""
  return dataclasses.replace(
      switch_base(num_experts), d_model=32, d_ff=64, num_heads=2, d_kv=16,
      encoder=architecture.Stack(2, (1,)), decoder=architecture.Stack(2, (1,)))


def write_hf_folder(arch: architecture.Architecture, path: str,
                    seed: int = 0) -> Dict[str, int]:
  """A float32 HF folder of random weights; returns parameter counts."""
  os.makedirs(path)
  config = hf_config.write(arch, "float32", expert_capacity=64)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
  shutil.copy(paths.EMBEDDED_VOCAB_PATH, os.path.join(path, "spiece.model"))
  specs = [(name, tensor_plan.source_shape(m), "float32")
           for m in hf_names.mappings(arch, hf_names.SWITCH)
           for name in m.sources]
  rng = np.random.default_rng(seed)
  safetensors_file.write(
      os.path.join(path, "model.safetensors"), specs,
      (rng.standard_normal(shape, dtype=np.float32) * 0.05
       for _, shape, _ in specs), {"format": "pt"})
  return parameter_counts(arch)


def parameter_counts(arch: architecture.Architecture) -> Dict[str, int]:
  """The model's parameters and its largest variable's."""
  sizes = [int(np.prod(p.shape)) for p in mtf_names.params(arch)]
  return {"parameters": sum(sizes), "largest_tensor_parameters": max(sizes)}


def _directory_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)


def run_tool(args: Sequence[str]) -> Dict[str, Any]:
  """Runs tools/convert_checkpoint.py; wall seconds, the conversion's own
  seconds (as the tool prints them) and its peak RSS."""
  start = time.time()
  child = subprocess.Popen([sys.executable, _TOOL, *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  output = child.stdout.read().decode(errors="replace")
  _, status, usage = os.wait4(child.pid, 0)
  child.returncode = os.waitstatus_to_exitcode(status)
  seconds = time.time() - start
  if child.returncode != 0:
    raise RuntimeError("convert_checkpoint %s failed (%d): %s"
                       % (" ".join(args), child.returncode, output[-2000:]))
  printed = _TOOL_TIME.search(output)
  if printed is None:
    raise RuntimeError("convert_checkpoint printed no time: %s"
                       % output[-2000:])
  return {"seconds": round(seconds, 2),
          "conversion_seconds": float(printed.group(1)),
          "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}  # KiB on Linux


def _synced_seconds() -> float:
  """Flushes every dirty page to disk; the seconds that took."""
  start = time.time()
  os.sync()
  return round(time.time() - start, 2)


def measure(arch: architecture.Architecture,
            work_dir: str) -> Dict[str, Any]:
  """Converts a synthetic model both ways (the tool's default shard sizes);
  the numbers of each direction."""
  shutil.rmtree(work_dir, ignore_errors=True)
  hf_dir, mtf_dir, back_dir = (os.path.join(work_dir, name)
                               for name in ("hf", "mtf", "hf_back"))
  counts = write_hf_folder(arch, hf_dir)
  result = {"architecture": dataclasses.asdict(arch), **counts}
  for direction, args, source, target in (
      ("hf_to_mtf", ["hf-to-mtf", hf_dir, mtf_dir, "--dtype=bfloat16"],
       hf_dir, mtf_dir),
      ("mtf_to_hf", ["mtf-to-hf", mtf_dir, back_dir], mtf_dir, back_dir)):
    largest = counts["largest_tensor_parameters"] * _READ_BYTES[
        direction] / 1e6
    _synced_seconds()  # the files made before are on disk
    with provenance.LoadMonitor(interval=1.0) as monitor:
      numbers = run_tool(args)
    numbers["sync_seconds"] = _synced_seconds()
    written_mb = _directory_bytes(target) / 1e6
    # 2x the largest tensor (as read, the larger dtype) + 1 GB.
    rss_limit = 2 * largest + 1000
    rate = written_mb / numbers["seconds"]
    own_rate = written_mb / max(numbers["conversion_seconds"], 1e-3)
    numbers.update(
        mb_read=round(_directory_bytes(source) / 1e6, 1),
        mb_written=round(written_mb, 1),
        mb_per_second_written=round(rate, 1),
        conversion_mb_per_second_written=round(own_rate, 1),
        peak_rss_limit_mb=round(rss_limit, 1),
        meets_speed_target=rate >= TARGET_MB_PER_SECOND,
        conversion_meets_speed_target=own_rate >= TARGET_MB_PER_SECOND,
        meets_memory_target=numbers["peak_rss_mb"] <= rss_limit,
        load=monitor.summary())
    result[direction] = numbers
  shutil.rmtree(work_dir)
  return result


def run(num_experts: Sequence[int], work_dir: str, results_path: str,
        command: str, size: str = "switch_base",
        log=print) -> Dict[str, Any]:
  """Measures each expert count; writes the results file; returns it."""
  make = {"switch_base": switch_base, "tiny": tiny}[size]
  results: Dict[str, Any] = {
      "size": size, "target_mb_per_second": TARGET_MB_PER_SECOND,
      "provenance": provenance.record(command, [], CODE_PARTS),
      "runs": {}}
  for experts in num_experts:
    log("conversion bench: %s with %d experts" % (size, experts))
    results["runs"]["E%d" % experts] = measure(
        make(experts), os.path.join(work_dir, "E%d" % experts))
    results["scaling"] = scaling(results["runs"], make(EXTRAPOLATED_EXPERTS))
    _write(results_path, results)
  return results


def scaling(runs: Dict[str, Any], target: architecture.Architecture
            ) -> Optional[Dict[str, Any]]:
  """Peak RSS as a line in the largest tensor's MB, per direction, and its
  value for `target` (extrapolated); None below two largest tensors.

  Streaming keeps peak RSS a constant (the runtime) plus a few of the
  largest tensors whatever the model's total size, which is what the
  switch-base-256 extrapolation relies on. The line goes through the two
  models with the largest tensors: smaller ones sit below it while their
  largest tensor is smaller than a checkpoint shard (then the shard size
  sets the memory).
  """
  by_size = sorted(runs.values(),
                   key=lambda r: r["largest_tensor_parameters"])
  if len({r["largest_tensor_parameters"] for r in by_size}) < 2:
    return None
  small, large = by_size[-2], by_size[-1]
  counts = parameter_counts(target)
  result: Dict[str, Any] = {"extrapolated_to": {
      "num_experts": target.num_experts, **counts,
      "bfloat16_mb": round(counts["parameters"] * 2 / 1e6)}}
  for direction, read_bytes in _READ_BYTES.items():
    (x0, y0), (x1, y1) = (
        (r["largest_tensor_parameters"] * read_bytes / 1e6,
         r[direction]["peak_rss_mb"]) for r in (small, large))
    slope = (y1 - y0) / (x1 - x0)
    intercept = y1 - slope * x1
    target_largest = counts["largest_tensor_parameters"] * read_bytes / 1e6
    predicted = intercept + slope * target_largest
    limit = 2 * target_largest + 1000
    result[direction] = {
        "peak_rss_mb_per_largest_tensor_mb": round(slope, 3),
        "peak_rss_mb_at_no_tensor": round(intercept, 1),
        "predicted_peak_rss_mb": round(predicted),
        "peak_rss_limit_mb": round(limit),
        "meets_memory_target": predicted <= limit}
  return result


def summary_lines(results: Dict[str, Any]) -> List[str]:
  lines = ["| model | params | largest tensor | direction | process s "
           "| conversion s | MB written | MB/s (process) "
           "| MB/s (conversion) | peak RSS MB | RSS limit MB |",
           "|---" * 11 + "|"]
  for name, run_result in results["runs"].items():
    for direction in _READ_BYTES:
      d = run_result[direction]
      lines.append(
          "| %s %s | %.0fM | %.1fM | %s | %.1f | %.1f | %.0f | %.1f | %.1f "
          "| %.0f | %.0f |" % (
              results["size"], name, run_result["parameters"] / 1e6,
              run_result["largest_tensor_parameters"] / 1e6, direction,
              d["seconds"], d["conversion_seconds"], d["mb_written"],
              d["mb_per_second_written"],
              d["conversion_mb_per_second_written"], d["peak_rss_mb"],
              d["peak_rss_limit_mb"]))
  fit = results.get("scaling")
  if fit:
    target = fit["extrapolated_to"]
    for direction in _READ_BYTES:
      lines.append(
          "%s: peak RSS = %.0f MB + %.2f x the largest tensor's MB; "
          "E%d (%.0fM params, %d MB in bfloat16): %d MB predicted, "
          "limit %d MB" % (
              direction, fit[direction]["peak_rss_mb_at_no_tensor"],
              fit[direction]["peak_rss_mb_per_largest_tensor_mb"],
              target["num_experts"], target["parameters"] / 1e6,
              target["bfloat16_mb"],
              fit[direction]["predicted_peak_rss_mb"],
              fit[direction]["peak_rss_limit_mb"]))
  return lines


def _write(path: str, results: Dict[str, Any]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(results, f, indent=1, sort_keys=True)
    f.write("\n")
  os.replace(path + ".tmp", path)
