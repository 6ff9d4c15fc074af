"""How cost grows with scale: experts doubling on CPU, paper models on TPU.

- CPU (measured): whole-model training steps of t5_tiny and switch_tiny with
  2x more experts each time at the same FLOPs per token (the paper's
  Figure 4 axis), timed round-robin in one process (model_step.py):
  parameters grow linearly with experts, the step time should not.
- TPU layouts (computed, nothing runs): per-device weights + Adafactor
  memory from the model-statistics tool, and the all-to-all traffic of
  expert parallelism per training step, from the layout: every MoE layer
  all-to-alls its [groups, experts, capacity, d_model] expert inputs out and
  the outputs back (2 per layer forward, 2 more backward), in the
  activation dtype (bfloat16 on TPU).
"""

import gc
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import gin
import mesh_tensorflow as mtf
from mesh_tensorflow.transformer import moe
from mesh_tensorflow.transformer import utils

from switch_mtf.analysis import model_stats
from switch_mtf.bench.speed import model_step
from switch_mtf.bench.speed import timing
from switch_mtf.layer import capacity
from switch_mtf.layer import switch as switch_layer

BFLOAT16_BYTES = 2
ALL_TO_ALLS_PER_LAYER = 4  # dispatch + combine, forward and backward


def time_models(specs: Dict[str, model_step.ModelSpec],
                protocol: timing.Protocol, threads: int = 0,
                log: Callable[[str], None] = print) -> Dict[str, Any]:
  """Builds every model, times their steps round-robin, closes them."""
  start = time.time()
  built = {}
  try:
    for name, spec in specs.items():
      log("  building %s" % name)
      built[name] = model_step.BuiltModel(spec, threads=threads)
    times, load = timing.time_on_idle_machine(
        {name: b.step for name, b in built.items()}, protocol, log)
    result = {}
    for name, b in built.items():
      entry = dict(times[name])
      entry.update(spec=b.spec.as_dict(), params=b.params,
                   expert_params=b.expert_params,
                   ms_per_token=entry["median_ms"] / b.spec.tokens)
      result[name] = entry
  finally:
    for b in built.values():
      b.close()
    gc.collect()
  return {"models": result, "load": load,
          "elapsed_s": round(time.time() - start, 1)}


def moe_layers(gin_files: Sequence[str], gin_params: Sequence[str] = ()
               ) -> Tuple[List[Dict[str, Any]], int]:
  """(MoE layers of the gin model as [{stack, E, group, cf, min_cap}], d_model).

  Builds the layer objects only (no graph): the routing knobs are read from
  the layers themselves, so gin macros and scopes resolve as in training.
  """
  model_stats.parse_gin(gin_files, gin_params)
  model = utils.build_model("bitransformer", model_stats.DEFAULT_VOCAB_SIZE,
                            model_stats.DEFAULT_VOCAB_SIZE,
                            mtf.LayoutRules([]), mtf.Shape([]))
  layers = []
  for stack_name, stack in (("encoder", model.encoder),
                            ("decoder", model.decoder)):
    for layer in stack.layer_stack.layers:
      if isinstance(layer, switch_layer.Switch):
        layers.append({"stack": stack_name, "experts": layer.num_experts,
                       "group_size": layer.group_size,
                       "capacity_factor": layer.capacity_factor_train,
                       "min_capacity": layer.min_expert_capacity})
      elif isinstance(layer, moe.MoE1D):
        h = layer._hparams  # pylint: disable=protected-access
        layers.append({"stack": stack_name, "experts": h.moe_num_experts,
                       "group_size": h.moe_group_size,
                       "capacity_factor": h.moe_capacity_factor_train,
                       "min_capacity": h.moe_min_expert_capacity})
  return layers, model.encoder.model_dim.size


def all_to_all_bytes(layers: Sequence[Dict[str, Any]], d_model: int,
                     tokens: Dict[str, int], num_microbatches: int,
                     batch_shards: int,
                     bytes_per_value: int = BFLOAT16_BYTES) -> int:
  """Bytes all-to-all'ed per training step (all devices together).

  tokens: per stack ("encoder"/"decoder"), tokens per step (batch x length).
  Each microbatch routes its tokens in groups (split like the batch), and
  each MoE layer moves groups x experts x capacity x d_model values 4 times.
  """
  total = 0
  for layer in layers:
    per_microbatch = tokens[layer["stack"]] // num_microbatches
    num_groups, group = capacity.split_into_groups(
        per_microbatch, layer["group_size"], batch_shards)
    cap = capacity.expert_capacity(group, layer["experts"],
                                   layer["capacity_factor"],
                                   layer["min_capacity"])
    total += (num_microbatches * ALL_TO_ALLS_PER_LAYER * num_groups
              * layer["experts"] * cap * d_model * bytes_per_value)
  return total


def paper_model(label: str, gin_files: Sequence[str],
                mesh_shape: Optional[str] = None,
                layout_rules: Optional[str] = None,
                gin_params: Sequence[str] = ()) -> Dict[str, Any]:
  """Model statistics + all-to-all traffic of one model on one layout."""
  try:
    model = model_stats.measure(gin_files, gin_params, mesh_shape=mesh_shape,
                                layout_rules=layout_rules)
  except model_stats.StatsError as e:
    return {"label": label, "gin_files": list(gin_files), "error": str(e)}
  layers, d_model = moe_layers(gin_files, gin_params)
  mesh = mtf.convert_to_shape(model["mesh_shape"])
  rules = mtf.convert_to_layout_rules(model["layout_rules"])
  batch_dim = mtf.Dimension("batch", model["batch_size"])
  lengths = model["sequence_length"]
  num_microbatches = utils.serialize_num_microbatches(
      batch_dim, lengths, mesh, rules)
  shards = mtf.tensor_dim_to_mesh_dim_size(rules, mesh, batch_dim)
  tokens = {"encoder": model["batch_size"] * lengths["inputs"],
            "decoder": model["batch_size"] * lengths["targets"]}
  total = all_to_all_bytes(layers, d_model, tokens, num_microbatches, shards)
  devices = max(model["num_devices"], 1)
  model.update({
      "label": label,
      "moe_layer_count": len(layers),
      "num_microbatches": num_microbatches,
      "all_to_all_bytes_per_step": total,
      "all_to_all_gib_per_step": round(total / 2**30, 3),
      "all_to_all_mib_per_device_per_step": round(total / devices / 2**20, 2),
      # Of each device's share, (n-1)/n leaves the device (n = batch shards).
      "all_to_all_off_device_fraction":
          round((shards - 1) / shards, 4) if shards > 1 else 0.0,
  })
  gin.clear_config()
  return model
