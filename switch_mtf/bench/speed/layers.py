"""The layer speed suites: which blocks of contenders to time together.

A block is a set of layer configs built in one process and timed
round-robin (timing.py) together with matmul probes, so every ratio quoted
(Switch / dense, ours / MoE1D, time / probe) comes from one block. Blocks are
the unit of resumption: a finished block is stored and skipped next time.

Sizes follow the anchor's Method A: 4096 tokens (32 x 128), d_model 256,
expert hidden = dense d_ff = 1024, float32 on the CPU.
"""

import dataclasses
import gc
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from switch_mtf.bench.common import grid
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import stats
from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.speed import flops
from switch_mtf.bench.speed import layer_graph
from switch_mtf.bench.speed import timing

MOE_KINDS = (layer_graph.SWITCH_EINSUM, layer_graph.SWITCH_GATHER,
             layer_graph.MOE1D_SWITCH, layer_graph.MOE1D_TOP2)
SWITCH_KINDS = MOE_KINDS[:3]


@dataclasses.dataclass
class Block:
  """Contenders timed side by side; label -> spec."""
  name: str
  specs: Dict[str, layer_graph.LayerSpec]
  probes: Sequence[Sequence[int]] = ((4096, 256, 1024), (4096, 1024, 256))


def label(spec: layer_graph.LayerSpec) -> str:
  """Short unique name of a spec inside a block, e.g. `switch_gather/E8/...`."""
  parts = [spec.kind]
  if spec.is_moe:
    parts += ["E%d" % spec.num_experts, "cf%g" % spec.capacity_factor,
              "G%d" % spec.group_size]
  parts.append("N%d" % spec.tokens)
  return "/".join(parts)


def _block(name: str, specs: Sequence[layer_graph.LayerSpec]) -> Block:
  return Block(name, {label(s): s for s in specs})


def main_blocks(experts: Sequence[int], capacity_factors: Sequence[float],
                group_size: int = 1024) -> List[Block]:
  """Per (E, cf): dense + every MoE kind at the anchor's size."""
  blocks = []
  for config in grid.expand({}, {"num_experts": list(experts),
                                 "capacity_factor": list(capacity_factors)}):
    specs = [layer_graph.LayerSpec(kind=layer_graph.DENSE)]
    specs += [layer_graph.LayerSpec(kind=k, group_size=group_size, **config)
              for k in MOE_KINDS]
    blocks.append(_block("layers/E%d/cf%r" % (config["num_experts"],
                                              config["capacity_factor"]),
                         specs))
  return blocks


def group_size_block(group_sizes: Sequence[int], num_experts: int = 8,
                     capacity_factor: float = 1.0) -> Block:
  """One block: the Switch kinds at each group size, 4096 tokens, + dense."""
  specs = [layer_graph.LayerSpec(kind=layer_graph.DENSE)]
  for g in group_sizes:
    specs += [layer_graph.LayerSpec(kind=k, num_experts=num_experts,
                                    capacity_factor=capacity_factor,
                                    group_size=g) for k in SWITCH_KINDS]
  return _block("group_size/E%d/cf%r" % (num_experts, capacity_factor), specs)


def tokens_block(batches: Sequence[int], num_experts: int = 8,
                 capacity_factor: float = 1.0,
                 group_size: int = 1024) -> Block:
  """One block: tokens per call grow (batch x 128), fixed group size."""
  specs = []
  for b in batches:
    specs.append(layer_graph.LayerSpec(kind=layer_graph.DENSE, batch=b))
    specs += [layer_graph.LayerSpec(kind=k, batch=b, num_experts=num_experts,
                                    capacity_factor=capacity_factor,
                                    group_size=group_size)
              for k in SWITCH_KINDS]
  return _block("tokens/E%d/cf%r/G%d" % (num_experts, capacity_factor,
                                          group_size), specs)


def suite(quick: bool) -> List[Block]:
  """The blocks of `make bench-quick` or `make bench`."""
  if quick:
    return (main_blocks([8, 32], [1.0, 1.25])
            + [group_size_block([256, 1024, 4096]),
               tokens_block([8, 32, 128])])
  return (main_blocks([8, 32, 128], [1.0, 1.25, 2.0])
          + [group_size_block([128, 256, 512, 1024, 2048, 4096]),
             tokens_block([8, 16, 32, 64, 128])])


def run_block(block: Block, protocol: timing.Protocol, threads: int = 0,
              log: Callable[[str], None] = print) -> Dict[str, Any]:
  """Builds, times and closes every contender of the block."""
  start = time.time()
  built = {}
  probes = {}
  try:
    for name, spec in block.specs.items():
      log("  building %s" % name)
      built[name] = layer_graph.BuiltLayer(spec, threads=threads)
    for shape in block.probes:
      probe = timing.MatmulProbe(*shape, threads=threads)
      probes[probe.name] = probe
    bandwidth = timing.BandwidthProbe(threads=threads)
    probes[bandwidth.name] = bandwidth
    contenders = {name: b.step for name, b in built.items()}
    contenders.update(probes)
    log("  timing %d contenders (%d rounds x %d)" % (
        len(contenders), protocol.rounds, protocol.iterations))
    times, load = timing.time_on_idle_machine(contenders, protocol, log)
    result = {"contenders": {}, "probes": {}, "load": load}
    for name, b in built.items():
      entry = dict(times[name])
      entry["forward_ms"] = timing.time_forward(b, protocol.forward_runs)
      entry["spec"] = b.spec.as_dict()
      entry["params"] = b.params
      entry.update(b.spec.groups_and_capacity())
      entry.update(flops.describe(b.spec))
      result["contenders"][name] = entry
    for name, probe in probes.items():
      entry = dict(times[name])
      if name == bandwidth.name:
        entry["gbs"] = probe.bytes / entry["median_ms"] / 1e6
        entry["best_gbs"] = probe.bytes / entry["min_ms"] / 1e6
      else:
        entry["gflops"] = probe.flops / entry["median_ms"] / 1e6
        entry["best_gflops"] = probe.flops / entry["min_ms"] / 1e6
      result["probes"][name] = entry
    # The machine's peaks: the best matmul of the block (fastest shape, best
    # run) and the best add, so that load spikes do not inflate fractions.
    result["probe_gflops"] = max(p["best_gflops"]
                                 for p in result["probes"].values()
                                 if "best_gflops" in p)
    result["bandwidth_gbs"] = result["probes"][bandwidth.name]["best_gbs"]
  finally:
    for b in list(built.values()) + list(probes.values()):
      b.close()
    built.clear()
    gc.collect()
  result["elapsed_s"] = round(time.time() - start, 1)
  result["protocol"] = dataclasses.asdict(protocol)
  return result


def run_suite(blocks: Sequence[Block], store: store_lib.ResultStore,
              protocol: timing.Protocol, threads: int = 0,
              log: Callable[[str], None] = print, command: str = "",
              rerun_stale: bool = False) -> None:
  """Runs the blocks the store does not hold yet (resumable).

  command: what started the suite, stored in each block's provenance.
  """
  for block in blocks:
    if store.done(block.name) and provenance.ensure_fresh(
        "speed: " + block.name, store.get(block.name), rerun_stale, log):
      log("speed: %s done, skipped" % block.name)
      continue
    log("speed: %s" % block.name)
    record = provenance.record(command, [], provenance.SPEED_CODE)
    result = run_block(block, protocol, threads, log)
    result["provenance"] = record  # the code as the block started
    store.put(block.name, result)


def derived(block_result: Dict[str, Any]) -> Dict[str, Dict[str, float]]:
  """Per contender: x dense (same tokens), x MoE1D switch (same E/cf/G/N),
  useful and executed GFLOP/s and their fraction of the block's probe, and
  (blocks timed with the bandwidth probe) its time over its roofline."""
  contenders = block_result["contenders"]
  probe = block_result["probe_gflops"]
  out = {}
  for name, entry in contenders.items():
    spec = entry["spec"]
    row = {"median_ms": entry["median_ms"]}
    dense = _find(contenders, kind=layer_graph.DENSE,
                  tokens=spec["batch"] * spec["length"])
    if dense is not None:
      row["x_dense"] = stats.ratio(entry["median_ms"], dense["median_ms"])
    if spec["kind"] != layer_graph.DENSE:
      moe1d = _find(contenders, kind=layer_graph.MOE1D_SWITCH,
                    tokens=spec["batch"] * spec["length"],
                    num_experts=spec["num_experts"],
                    capacity_factor=spec["capacity_factor"],
                    group_size=spec["group_size"])
      if moe1d is not None:
        row["x_moe1d_switch"] = stats.ratio(entry["median_ms"],
                                            moe1d["median_ms"])
    seconds = entry["median_ms"] / 1e3
    # Counted from the spec, not the stored count: a corrected count (e.g.
    # top-2's, capped at its capacity slots) applies to old measurements.
    counts = flops.describe(layer_graph.LayerSpec(**spec))
    row["useful_gflops"] = counts["useful_train_flops"] / seconds / 1e9
    row["executed_gflops"] = counts["executed_train_flops"] / seconds / 1e9
    row["useful_fraction_of_probe"] = row["useful_gflops"] / probe
    row["executed_fraction_of_probe"] = row["executed_gflops"] / probe
    if "bandwidth_gbs" in block_result:  # blocks measured with the probe
      roof = flops.roofline_ms(layer_graph.LayerSpec(**spec), probe,
                               block_result["bandwidth_gbs"])
      row.update(roof, x_roofline=entry["median_ms"] / roof["roofline_ms"])
    out[name] = row
  return out


def _find(contenders: Dict[str, Any], kind: str, tokens: int,
          **fields: Any) -> Optional[Dict[str, Any]]:
  for entry in contenders.values():
    spec = entry["spec"]
    if spec["kind"] != kind or spec["batch"] * spec["length"] != tokens:
      continue
    if all(spec[k] == v for k, v in fields.items()):
      return entry
  return None
