"""Does a gin configuration's mesh layout fit a TPU slice? Checked up front.

A layout that does not fit is otherwise found by the TPU job itself, after
start-up and graph compilation. The configuration is read exactly as
`t5_mesh_transformer` reads it (gin_config.py) and the checks are plain
arithmetic on the result:

- the mesh has as many devices as the slice (v2/v3: one per core);
- every Switch/MoE layer's experts (and expert hidden units) divide evenly
  over the mesh dimension the layout splits them over.
"""

import dataclasses
import logging
import re
from typing import List, Optional, Sequence, Tuple

import gin
import mesh_tensorflow as mtf

from switch_mtf.cli import gin_config

# TPU generations whose accelerator type "vX-N" counts devices: one per core
# (TPUEstimator runs one replica per core). Others: pass num_cores.
_CORE_COUNTED = ("v2", "v3")
EXPERTS_DIM = "experts"
EXPERT_HIDDEN_DIM = "expert_hidden"


class LayoutError(ValueError):
  """The configuration cannot run on the requested slice."""


@dataclasses.dataclass(frozen=True)
class ExpertLayer:
  stack: str  # "encoder" / "decoder" / "" (decoder-only models)
  name: str   # e.g. block_000/layer_003
  num_experts: int
  hidden_size: int


@dataclasses.dataclass(frozen=True)
class Layout:
  mesh_shape: mtf.Shape
  rule_pairs: Tuple[Tuple[str, str], ...]  # (tensor dim, mesh dim)
  expert_layers: Tuple[ExpertLayer, ...]

  @property
  def layout_rules(self) -> mtf.LayoutRules:
    return mtf.LayoutRules(self.rule_pairs)


def cores_of(accelerator_type: str) -> int:
  """`v3-32` -> 32 devices. Raises LayoutError for unknown kinds."""
  match = re.fullmatch(r"(v\d+[a-z]*)-(\d+)", accelerator_type.strip())
  if not match or match.group(1) not in _CORE_COUNTED:
    raise LayoutError(
        "Accelerator type %r is not one this tool can count: use a v2 or v3 "
        "slice name such as 'v3-32' (32 cores), or give the device count "
        "explicitly (--num_cores)." % accelerator_type)
  return int(match.group(2))


def _quiet_gin_search(record: logging.LogRecord) -> bool:
  """gin logs "Path not found" for each search path it tries before the one
  that has the file; real failures raise."""
  return not record.getMessage().startswith("Path not found: ")


def _expert_layers() -> Tuple[ExpertLayer, ...]:
  # pylint: disable=g-import-not-at-top
  from mesh_tensorflow.transformer import moe
  from mesh_tensorflow.transformer import transformer
  from switch_mtf.layer import switch as switch_layer
  # pylint: enable=g-import-not-at-top
  model_type = gin_config.run_arg("model_type")
  stacks = ("encoder", "decoder") if model_type == "bitransformer" else ("",)
  found = []
  for stack in stacks:
    with gin.config_scope(stack or None):
      layers = transformer.make_layer_stack(layer_stack_cls=list)
    for layer in layers:
      if isinstance(layer, switch_layer.Switch):
        found.append(ExpertLayer(stack, layer.name, layer.num_experts,
                                 layer.hidden_size))
      elif isinstance(layer, moe.MoE1D):
        hparams = layer._hparams  # pylint: disable=protected-access
        found.append(ExpertLayer(stack, layer.name, hparams.moe_num_experts,
                                 hparams.moe_hidden_size))
  return tuple(found)


def _rule_pairs(value) -> Tuple[Tuple[str, str], ...]:
  """"batch:batch,experts:batch" (or a list of pairs) -> pairs."""
  if isinstance(value, str):
    pairs = []
    for rule in filter(None, (r.strip() for r in value.split(","))):
      tensor_dim, sep, mesh_dim = rule.partition(":")
      if not sep or not tensor_dim or not mesh_dim:
        raise LayoutError(
            "Layout rule %r in utils.run.layout_rules=%r is not "
            "'<tensor dim>:<mesh dim>'." % (rule, value))
      pairs.append((tensor_dim.strip(), mesh_dim.strip()))
    return tuple(pairs)
  return tuple((str(a), str(b)) for a, b in value)


def resolve(gin_files: Sequence[str], gin_params: Sequence[str]) -> Layout:
  """The mesh, layout rules and expert layers the CLI would build."""
  root = logging.getLogger()
  root.addFilter(_quiet_gin_search)
  try:
    gin_config.parse(gin_files, gin_params)
    return Layout(
        mesh_shape=mtf.convert_to_shape(gin_config.run_arg("mesh_shape")),
        rule_pairs=_rule_pairs(gin_config.run_arg("layout_rules")),
        expert_layers=_expert_layers())
  finally:
    gin.clear_config()
    root.removeFilter(_quiet_gin_search)


def problems(layout: Layout, num_devices: Optional[int]) -> List[str]:
  """Every reason the layout cannot run on `num_devices` devices."""
  found = []
  mesh = layout.mesh_shape
  if num_devices is not None and mesh.size != num_devices:
    found.append(
        "mesh shape %s has %d devices but the slice has %d; make the product "
        "of the mesh dimensions %d (e.g. utils.tpu_mesh_shape.model_"
        "parallelism or utils.run.mesh_shape in the layout gin)."
        % (_shape_str(mesh), mesh.size, num_devices, num_devices))
  # (knob, size, mesh dim, shards) -> the layers it applies to.
  uneven = {}
  for layer in layout.expert_layers:
    for knob, dim_name, size in (
        ("num_experts", EXPERTS_DIM, layer.num_experts),
        ("hidden_size", EXPERT_HIDDEN_DIM, layer.hidden_size)):
      axis = layout.layout_rules.tensor_dimension_to_mesh_axis(
          mtf.Dimension(dim_name, size), mesh)
      if axis is not None and size % mesh.dims[axis].size:
        key = (knob, dim_name, size, mesh.dims[axis].name,
               mesh.dims[axis].size)
        uneven.setdefault(key, []).append(
            "/".join(filter(None, (layer.stack, layer.name))))
  for (knob, dim_name, size, mesh_dim, shards), layers in uneven.items():
    found.append(
        "%s=%d is not divisible by mesh dimension %r (size %d), which the "
        "layout splits %r over (%d layer%s: %s); use a multiple of %d or "
        "another layout." % (knob, size, mesh_dim, shards, dim_name,
                             len(layers), "s" if len(layers) > 1 else "",
                             ", ".join(layers[:3]) +
                             (", ..." if len(layers) > 3 else ""), shards))
  return found


def check(gin_files: Sequence[str], gin_params: Sequence[str],
          num_devices: Optional[int]) -> Layout:
  """resolve + problems; raises LayoutError listing every problem."""
  layout = resolve(gin_files, gin_params)
  found = problems(layout, num_devices)
  if found:
    raise LayoutError(
        "The layout does not fit the slice (gin files %s):\n  - %s"
        % (list(gin_files), "\n  - ".join(found)))
  return layout


def _shape_str(shape: mtf.Shape) -> str:
  return ",".join("%s:%d" % (d.name, d.size) for d in shape.dims) or "(none)"
