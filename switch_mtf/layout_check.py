"""Does a gin configuration's mesh layout fit a TPU slice? Checked up front.

A layout that does not fit is otherwise found by the TPU job itself, after
start-up and graph compilation. The configuration is read exactly as
`t5_mesh_transformer` reads it (Mesh TF's defaults.gin, then the gin files,
then the bindings) and the checks are plain arithmetic on the result:

- the mesh has as many devices as the slice (v2/v3: one per core);
- every Switch/MoE layer's experts (and expert hidden units) divide evenly
  over the mesh dimension the layout splits them over.
"""

import contextlib
import dataclasses
import logging
import os
import re
import sys
from typing import Iterator, List, Optional, Sequence, Tuple

import gin
import mesh_tensorflow as mtf

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


@contextlib.contextmanager
def _no_namespace_shadows(gin_dirs: Sequence[str]) -> Iterator[None]:
  """Hides sys.path entries holding a plain folder named like a gin folder.

  gin asks importlib whether `runs/x.gin` is a file of a Python package
  `runs`; a folder `runs/` without `__init__.py` in a sys.path entry (the
  repo root under pytest or `python -m`, after `make demo` made `runs/`) is
  a namespace package without a file, and gin then fails with a TypeError
  instead of trying the next search path.
  """
  names = {entry for d in gin_dirs if os.path.isdir(d)
           for entry in os.listdir(d) if os.path.isdir(os.path.join(d, entry))}
  saved = list(sys.path)

  def shadows(entry):
    base = os.path.abspath(entry or os.curdir)
    return any(os.path.isdir(os.path.join(base, n)) and not os.path.exists(
        os.path.join(base, n, "__init__.py")) for n in names)
  sys.path[:] = [entry for entry in saved if not shadows(entry)]
  try:
    yield
  finally:
    sys.path[:] = saved


def _parse(gin_files: Sequence[str], gin_params: Sequence[str]) -> None:
  """Parses like mesh_transformer_main (defaults first, unknowns kept)."""
  # pylint: disable=g-import-not-at-top,protected-access
  import pkg_resources
  from mesh_tensorflow.transformer import utils as mtf_utils
  import switch_mtf
  from switch_mtf import launcher
  # t5.models' __init__ imports torch; gin files import t5.models modules.
  launcher.import_t5_models_without_torch()
  from t5.models import mesh_transformer
  # pylint: enable=g-import-not-at-top,protected-access
  gin.clear_config()
  # gin logs "Path not found" for each search path it tries before the one
  # that has the file; real failures raise.
  logging.getLogger().addFilter(_quiet_gin_search)
  t5_gin_dir = pkg_resources.resource_filename("t5.models", "gin")
  gin.add_config_file_search_path(t5_gin_dir)
  our_gin_dir = switch_mtf.gin_paths.add_gin_search_path()
  skip = mesh_transformer.DEPRECATED_GIN_REFERENCES
  with _no_namespace_shadows([our_gin_dir, t5_gin_dir]):
    gin.parse_config_file(pkg_resources.resource_filename(
        mtf_utils.__name__, "gin/defaults.gin"), skip_unknown=skip)
    gin.parse_config_files_and_bindings(list(gin_files), list(gin_params),
                                        skip_unknown=skip,
                                        finalize_config=False)


def _quiet_gin_search(record: logging.LogRecord) -> bool:
  return not record.getMessage().startswith("Path not found: ")


def _mesh_shape() -> mtf.Shape:
  # pylint: disable-next=g-import-not-at-top
  from mesh_tensorflow.transformer import utils as mtf_utils
  value = gin.query_parameter("utils.run.mesh_shape")
  if isinstance(value, gin.config.ConfigurableReference):
    if value.configurable.name != "tpu_mesh_shape":
      raise LayoutError(
          "utils.run.mesh_shape is bound to @%s(), which this check cannot "
          "evaluate; bind a mesh shape string such as 'model:8,batch:4' or "
          "@utils.tpu_mesh_shape()." % value.configurable.name)
    return mtf.convert_to_shape(mtf_utils.tpu_mesh_shape())
  return mtf.convert_to_shape(value)


def _expert_layers() -> Tuple[ExpertLayer, ...]:
  # pylint: disable=g-import-not-at-top
  from mesh_tensorflow.transformer import moe
  from mesh_tensorflow.transformer import transformer
  from switch_mtf import layer as switch_layer
  # pylint: enable=g-import-not-at-top
  model_type = gin.query_parameter("utils.run.model_type") if _bound(
      "utils.run.model_type") else "bitransformer"
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


def _bound(name: str) -> bool:
  try:
    gin.query_parameter(name)
    return True
  except ValueError:
    return False


def resolve(gin_files: Sequence[str], gin_params: Sequence[str]) -> Layout:
  """The mesh, layout rules and expert layers the CLI would build."""
  _parse(gin_files, gin_params)
  try:
    return Layout(
        mesh_shape=_mesh_shape(),
        rule_pairs=_rule_pairs(gin.query_parameter("utils.run.layout_rules")),
        expert_layers=_expert_layers())
  finally:
    gin.clear_config()


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
