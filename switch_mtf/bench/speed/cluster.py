"""Experts across processes: what a cluster mesh moves and what it costs.

For each shipped cluster layout (gin/layouts/cluster-4_*.gin) switch_tiny's
whole training step is built twice on the same 4-slice mesh: on 4 logical
CPU devices of this process, and on the devices of 2 worker processes
(switch_mtf.cluster.local: 127.0.0.1, 2 CPU devices each) through a chief
server in this process. Both are timed round-robin; the cluster step is run
once traced to count the bytes TensorFlow's runtime moved between tasks
(switch_mtf.cluster.traffic), next to the all-to-all model's prediction
(scaling.all_to_all_bytes) for the partners that sit in another process.
"""

import gc
from typing import Any, Callable, Dict, List, Tuple

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

from switch_mtf.bench.common import tiny_models
from switch_mtf.bench.speed import model_step
from switch_mtf.bench.speed import scaling
from switch_mtf.bench.speed import timing
from switch_mtf.cli import cpu_devices
from switch_mtf.cli import gin_config
from switch_mtf.cluster import local
from switch_mtf.cluster import traffic
from switch_mtf.layer import experts as experts_lib

LAYOUTS = ("dp", "ep", "dp_mp_ep")
WORKERS, CPUS_PER_WORKER = 2, 2
FLOAT32_BYTES = 4


def layout_gin(name: str) -> str:
  return "layouts/cluster-4_%s.gin" % name


def mesh_and_rules(name: str) -> Tuple[str, str]:
  """utils.run.mesh_shape and .layout_rules of the shipped layout file, as
  the CLI parses it."""
  gin_config.parse([layout_gin(name)], [])
  return gin_config.run_arg("mesh_shape"), gin_config.run_arg("layout_rules")


def spec_for(name: str, batch: int = 8) -> model_step.ModelSpec:
  mesh_shape, rules = mesh_and_rules(name)
  return model_step.ModelSpec(
      "switch_tiny_E8_%s" % name, (tiny_models.SWITCH_GIN,),
      ("num_experts = 8", tiny_models.CPU_DISPATCH), batch=batch,
      mesh_shape=mesh_shape, layout=rules)


def cross_process_fraction(mesh_shape: str, devices: List[str]) -> float:
  """Of each slice's all-to-all partners (the slices that differ from it
  only along the mesh axis the experts are split on, 'batch'), the share
  in another task, averaged over slices."""
  shape = mtf.convert_to_shape(mesh_shape)
  names = [d.name for d in shape.dims]
  if "batch" not in names:
    return 0.0
  axis = names.index("batch")
  coords = [mtf.pnum_to_processor_coordinates(shape, i)
            for i in range(shape.size)]
  tasks = [tf.DeviceSpec.from_string(d).task for d in devices]
  shares = []
  for i, here in enumerate(coords):
    partners = [j for j, there in enumerate(coords)
                if all(a == b for k, (a, b) in enumerate(zip(here, there))
                       if k != axis)]
    shares.append(sum(tasks[j] != tasks[i] for j in partners)
                  / len(partners))
  return sum(shares) / len(shares)


def predicted_moe_bytes(spec: model_step.ModelSpec) -> Dict[str, float]:
  """The all-to-all model for `spec` (0 when the layout keeps the experts
  whole: then no all-to-all runs, and every device gathers all groups)."""
  layers, d_model = scaling.moe_layers(spec.gin_files, spec.gin_params)
  mesh = mtf.convert_to_shape(spec.mesh_shape)
  rules = mtf.convert_to_layout_rules(spec.layout)
  shards = mtf.tensor_dim_to_mesh_dim_size(
      rules, mesh, mtf.Dimension("batch", spec.batch))
  experts_split = mtf.tensor_dim_to_mesh_dim_size(
      rules, mesh, mtf.Dimension(experts_lib.EXPERTS, 1)) > 1
  total = scaling.all_to_all_bytes(
      layers, d_model, {"encoder": spec.batch * spec.inputs_length,
                        "decoder": spec.batch * spec.targets_length},
      1, shards, bytes_per_value=FLOAT32_BYTES) if experts_split else 0
  return {"all_to_all_bytes": total, "shards": shards,
          "experts_split": experts_split}


def measure(name: str, protocol: timing.Protocol, threads: int = 0,
            log: Callable[[str], None] = print) -> Dict[str, Any]:
  """One layout: traffic, prediction and the two step times."""
  spec = spec_for(name)
  slices = mtf.convert_to_shape(spec.mesh_shape).size
  built = {}
  with local.LocalCluster(WORKERS, CPUS_PER_WORKER) as cluster:
    try:
      log("  building %s in one process (%d CPU devices)" % (name, slices))
      built["one_process"] = model_step.BuiltModel(
          spec, threads=threads,
          devices=["cpu:%d" % i for i in range(slices)],
          config=cpu_devices.session_config(slices))
      log("  building %s on %d workers x %d CPU devices" % (
          name, WORKERS, CPUS_PER_WORKER))
      chief = tf.distribute.Server(cluster.cluster.cluster_spec(),
                                   job_name="chief", task_index=0)
      devices = cluster.cluster.mesh_devices()
      built["cluster"] = model_step.BuiltModel(
          spec, devices=devices, target=chief.target,
          config=tf.ConfigProto())
      first_losses = {k: b.step() for k, b in built.items()}
      moved = traffic.measure_step(
          built["cluster"].session,
          [built["cluster"].train_op, built["cluster"].loss])
      times, load = timing.time_on_idle_machine(
          {k: b.step for k, b in built.items()}, protocol, log)
    finally:
      for b in built.values():
        b.close()
      gc.collect()
  predicted = predicted_moe_bytes(spec)
  fraction = cross_process_fraction(spec.mesh_shape, devices)
  return {"spec": spec.as_dict(), "layout_gin": layout_gin(name),
          "workers": WORKERS, "cpus_per_worker": CPUS_PER_WORKER,
          "devices": devices, "first_losses": first_losses,
          "traffic": moved, "predicted": dict(
              predicted, cross_process_fraction=fraction,
              cross_process_bytes=predicted["all_to_all_bytes"] * fraction),
          "times": times, "load": load,
          "cluster_over_one_process": (times["cluster"]["median_ms"]
                                       / times["one_process"]["median_ms"])}


def _kib(n: float) -> str:
  return "%.1f KiB" % (n / 1024.0)


def table_lines(entries: List[Tuple[str, Dict[str, Any]]]) -> List[str]:
  """The measured traffic and step-time table, one row per layout."""
  lines = ["| layout | mesh | MoE tensors across processes / step "
           "(measured) | all-to-all model | weights and gradients | other | "
           "step ms, one process | step ms, cluster | cluster / one process "
           "| other processes' CPU share |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for _, entry in entries:
    moved, predicted = entry["traffic"], entry["predicted"]
    lines.append("| `%s` | %s | %s | %s | %s | %s | %.1f | %.1f | %.2f | "
                 "%.1f%% |" % (
                     entry["layout_gin"], entry["spec"]["mesh_shape"],
                     _kib(moved["by_kind"]["moe"]),
                     _kib(predicted["cross_process_bytes"]),
                     _kib(moved["by_kind"]["variables"]),
                     _kib(moved["by_kind"]["other"]),
                     entry["times"]["one_process"]["median_ms"],
                     entry["times"]["cluster"]["median_ms"],
                     entry["cluster_over_one_process"],
                     100 * entry["load"]["other_cpu_share_mean"]))
  return lines


def section(entries: List[Tuple[str, Dict[str, Any]]]) -> List[str]:
  """The report's cluster section (speed/summary.md)."""
  if not entries:
    return []
  return ["## Experts across processes: cluster layouts on 127.0.0.1", "",
          "switch_tiny E8 (gather dispatch), batch 8 x 128/32 tokens, on 4 "
          "mesh slices: 4 logical CPU devices in one process vs %d worker "
          "processes x %d CPU devices (the chief in the timing process), "
          "timed round-robin. Bytes: what TensorFlow's runtime received "
          "across tasks in one traced step; the model: the all-to-all "
          "formula (4 x groups x experts x capacity x d_model float32 per "
          "MoE layer) times the share of each slice's all-to-all partners "
          "in another process." % (WORKERS, CPUS_PER_WORKER), ""
          ] + table_lines(entries) + [""]
