"""What a gin config costs: parameters, FLOPs and per-device memory.

Builds the model's Mesh TF graph from the same gin files the t5 CLI takes,
but never lowers it and declares no TensorFlow variable: Mesh TF tensors are
only shapes, so even Switch-C (1.6T parameters) costs seconds of CPU and no
weight memory. Parsing replaces the process's gin config.

Counts (see docs/models.md for the paper comparison):
- params: trainable variables; expert_params: those with an `experts` dim.
- flops_per_sequence / flops_per_token (forward, the paper's convention):
  2 * M * N * K for every contracting einsum of the graph (dense layers,
  attention scores, logits) at the configured batch and lengths, plus, for
  each mixture-of-experts layer, one expert FFN per routed token (two for
  top-2 MoE). Mixture-of-experts layers inside other layers (Mesh TF's
  ExpertsSelfAttention, whose MoE1D computes queries and keys) count the
  same way, the rest of their layer as dense. Router, dispatch and combine
  einsums and capacity slack are
  left out, as the paper does when it calls Switch-Base FLOP-matched to
  T5-Base; they are reported separately as routing_flops_per_token, counted
  for the TPU (a layer left at dispatch_mode "auto" counts its one-hot
  einsums, as it would run on the paper's hardware).
  Per token = per sequence / (inputs length + targets length).
- memory per device: the slice of every variable (in its slice dtype) and of
  its Adafactor slots (float32) under the mesh shape and layout rules.
  Activations and gradients are not counted, so this is a lower bound.
"""

import contextlib
import dataclasses
import math
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import mesh_tensorflow as mtf
from mesh_tensorflow.transformer import moe
from mesh_tensorflow.transformer import utils
import tensorflow.compat.v1 as tf

from switch_mtf.cli import gin_config
from switch_mtf.layer import dispatch
from switch_mtf.layer import expert_matmul
from switch_mtf.layer import switch as switch_lib

EXPERTS_DIM = "experts"
# The T5 SentencePiece vocabulary (cc_all.32000.100extra): 32100 ids, which
# Mesh TF pads to 32128 (a multiple of 128) as in the released checkpoints.
DEFAULT_VOCAB_SIZE = 32100
_GIB = 2**30

# Reads a config without measuring it (used by switch_mtf/bench as well).
parse_gin = gin_config.parse


class StatsError(ValueError):
  """A config or layout that cannot be measured, with the fix in the text."""


# (class, method): each call of the method is one mixture-of-experts layer
# (Switch.call runs Switch.project, which SwitchSelfAttention calls too).
_MOE_CALLS = ((moe.MoE1D, "call"), (switch_lib.Switch, "project"))


@dataclasses.dataclass
class _LayerCall:
  """The graph operations one MoE layer created, and the tokens it saw."""
  layer: Any
  first_op: int
  end_op: int
  tokens: int


class _DeclaredVariable:
  """Stands in for the TF variable behind an mtf.Variable: a name, no op.

  Mesh TF declares a TF variable (ops, an initializer) for every mtf
  variable as it builds the graph; for a count, the name is all it reads.
  Skipping the declarations makes Switch-C build in seconds, not minutes.
  """

  def __init__(self, name: str):
    self.name = name + ":0"


def _declare_only(getter, name, *args, **kwargs):
  """A variable-scope custom getter that creates no TF variable."""
  del getter, args, kwargs  # Nothing is created.
  return _DeclaredVariable(name)


def _mesh_shape(override: Optional[str]) -> mtf.Shape:
  """The mesh: the flag, else gin's; a single device if gin names no TPU."""
  if override is not None:
    return mtf.convert_to_shape(override)
  try:
    return mtf.convert_to_shape(gin_config.run_arg("mesh_shape"))
  except RuntimeError as e:  # @tpu_mesh_shape() without a tpu_topology.
    if "tpu_topology" not in str(e):
      raise
    return mtf.Shape([])


def _sequence_lengths() -> Dict[str, int]:
  lengths = gin_config.run_arg("sequence_length")
  if isinstance(lengths, int):
    return {"inputs": lengths, "targets": lengths}
  return {"inputs": lengths["inputs"], "targets": lengths["targets"]}


def _shape_str(shape: mtf.Shape) -> str:
  return ",".join("%s:%d" % (d.name, d.size) for d in shape.dims)


def _layout_str(rules: mtf.LayoutRules) -> str:
  return ",".join("%s:%s" % pair for pair in sorted(rules._pairs))  # pylint: disable=protected-access


@contextlib.contextmanager
def _recording_moe_calls(graph: mtf.Graph,
                         calls: List[_LayerCall]) -> Iterator[None]:
  """Makes every MoE layer note the ops it creates when called.

  Patched on the classes, so MoE layers built inside other layers (the
  Switch of SwitchSelfAttention, the MoE1D of Mesh TF's
  ExpertsSelfAttention) are recorded too.
  """
  originals = [(cls, name, cls.__dict__[name]) for cls, name in _MOE_CALLS]

  def recording(original):
    def call(self, context, x, *args, **kwargs):
      first = len(graph.operations)
      y = original(self, context, x, *args, **kwargs)
      tokens = x.shape.size // x.shape.dims[-1].size
      calls.append(_LayerCall(self, first, len(graph.operations), tokens))
      return y
    return call

  for cls, name, original in originals:
    setattr(cls, name, recording(original))
  try:
    yield
  finally:
    for cls, name, original in originals:
      setattr(cls, name, original)


def _experts_per_token(layer: Any) -> int:
  """Experts each token visits: 2 for Mesh TF's top-2 MoE, else 1 (Switch)."""
  if isinstance(layer, moe.MoE1D):
    hparams = layer._hparams  # pylint: disable=protected-access
    if hparams.moe_gating == "top_2":
      return 2
    if hparams.moe_gating == "top_n":
      return hparams.moe_top_n_num_experts_per_token
  return 1


def _matmul_flops(op: mtf.Operation) -> int:
  """2 * prod(all dims) for a contracting einsum or an expert matmul, else 0.

  Not matmuls, as FLOP counts conventionally have it: `mtf.multiply` (an
  einsum without a contracted dim, i.e. elementwise) and `mtf.gather` (an
  einsum with a one-hot, i.e. an embedding lookup).
  """
  if isinstance(op, expert_matmul.ExpertMatmulOperation):
    return 2 * math.prod(d.size for d in {
        d for t in op.inputs for d in t.shape.dims})
  if not isinstance(op, mtf.EinsumOperation) or len(op.inputs) < 2:
    return 0
  if any(isinstance(t.operation, mtf.OneHotOperation) for t in op.inputs):
    return 0
  dims = {d for t in op.inputs for d in t.shape.dims}
  if not dims - set(op.outputs[0].shape.dims):
    return 0
  return 2 * math.prod(d.size for d in dims)


def _has_experts_dim(shape: mtf.Shape) -> bool:
  return any(d.name == EXPERTS_DIM for d in shape.dims)


def _slice_size(name: str, shape: mtf.Shape, mesh_shape: mtf.Shape,
                rules: mtf.LayoutRules) -> int:
  """Elements of a variable on one device; StatsError if it cannot split."""
  try:
    layout = rules.tensor_layout(shape, mesh_shape)
  except ValueError as e:
    raise StatsError("variable %s %s cannot be laid out on mesh %s: %s" % (
        name, shape, _shape_str(mesh_shape), e)) from e
  size = 1
  for dim, axis in zip(shape.dims, layout.tensor_axis_to_mesh_axis):
    if axis is None:
      size *= dim.size
      continue
    mesh_dim = mesh_shape.dims[axis]
    if dim.size % mesh_dim.size:
      raise StatsError(
          "variable %s: dimension %s=%d is split over mesh dimension %s=%d, "
          "and %d is not divisible by %d. Pick a mesh whose '%s' size divides "
          "%d, or drop the layout rule '%s:%s'." % (
              name, dim.name, dim.size, mesh_dim.name, mesh_dim.size,
              dim.size, mesh_dim.size, mesh_dim.name, dim.size, dim.name,
              mesh_dim.name))
    size *= dim.size // mesh_dim.size
  return size


def _adafactor_slot_shapes(optimizer: mtf.optimize.AdafactorOptimizer,
                           shape: mtf.Shape) -> List[mtf.Shape]:
  """Shapes of the slots the configured Adafactor keeps for a variable.

  These are the slots `AdafactorOptimizer.apply_grad` creates: row and
  column second moments if it factors the variable, else a full one, plus
  momentum if beta1 > 0. Asking the gin-configured optimizer keeps knobs
  such as `AdafactorOptimizer.factored` and `.beta1` in the count; building
  the whole update graph instead would take longer than the model itself.
  """
  factored = optimizer._factored_dims(shape)  # pylint: disable=protected-access
  slots = [shape - factored[0], shape - factored[1]] if factored else [shape]
  if optimizer._beta1:  # pylint: disable=protected-access
    slots.append(shape)
  return slots


def _memory_per_device(trainable: Sequence[mtf.Variable],
                       mesh_shape: mtf.Shape,
                       rules: mtf.LayoutRules) -> Tuple[int, int, int]:
  """(parameters, weight bytes, Adafactor bytes) held by one device."""
  # The gin-configured optimizer; the two rates only skip building TF ops.
  optimizer = mtf.optimize.AdafactorOptimizer(learning_rate=1.0,
                                              decay_rate=0.8)
  params = weight_bytes = slot_bytes = 0
  for var in trainable:
    size = _slice_size(var.name, var.shape, mesh_shape, rules)
    params += size
    weight_bytes += size * var.slice_dtype.size
    # Slots are float32 variables with the variable's dim names, so the
    # layout rules split them the same way.
    slot_bytes += 4 * sum(_slice_size(var.name + " (Adafactor slot)", slot,
                                      mesh_shape, rules)
                          for slot in _adafactor_slot_shapes(optimizer,
                                                             var.shape))
  return params, weight_bytes, slot_bytes


def _batch_size(lengths: Dict[str, int], mesh_shape: mtf.Shape,
                rules: mtf.LayoutRules) -> int:
  batch = utils.compute_batch_size(lengths, mesh_shape, rules,
                                   gin_config.run_arg("batch_size"))
  shards = mtf.tensor_dim_to_mesh_dim_size(rules, mesh_shape,
                                           mtf.Dimension("batch", batch))
  if batch % shards:
    raise StatsError(
        "batch of %d sequences cannot be split over %d data-parallel shards "
        "of mesh %s; set utils.run.batch_size to a multiple of %d sequences."
        % (batch, shards, _shape_str(mesh_shape), shards))
  return batch


def _build_graph(model_type: str, vocab_size: int, mesh: mtf.Shape,
                 rules: mtf.LayoutRules, batch: int, lengths: Dict[str, int]
                 ) -> Tuple[mtf.Graph, List[_LayerCall]]:
  """The model's forward training graph on a batch of zero tokens."""
  model = utils.build_model(model_type, vocab_size, vocab_size, rules, mesh)
  graph = mtf.Graph()
  mtf_mesh = mtf.Mesh(graph, "model_stats_mesh")
  calls: List[_LayerCall] = []
  batch_dim = mtf.Dimension("batch", batch)
  inputs, targets = (
      mtf.zeros(mtf_mesh, [batch_dim, mtf.Dimension("length", lengths[k])],
                dtype=tf.int32) for k in ("inputs", "targets"))
  try:
    with _recording_moe_calls(graph, calls):
      model.call_simple(inputs=inputs, targets=targets, compute_loss=True,
                        mode=tf.estimator.ModeKeys.TRAIN,
                        variable_dtype=utils.get_variable_dtype())
  except ValueError as e:
    raise StatsError("building the model on mesh %s with layout %s failed: %s"
                     % (_shape_str(mesh), _layout_str(rules), e)) from e
  return graph, calls


def _count(graph: mtf.Graph, calls: Sequence[_LayerCall],
           trainable: Sequence[mtf.Variable], batch: int,
           lengths: Dict[str, int]) -> Dict[str, Any]:
  """Parameters and forward FLOPs of the built (forward) graph."""
  ops = graph.operations
  total_flops = sum(_matmul_flops(op) for op in ops)
  moe_flops = routing_flops = 0
  num_experts = set()
  per_token = set()
  moe_layers = 0
  for call in calls:
    layer_ops = ops[call.first_op:call.end_op]
    experts = [op for op in layer_ops if isinstance(op, mtf.Variable)
               and _has_experts_dim(op.shape)]
    if not experts:
      continue
    moe_layers += 1
    size = {d.size for v in experts for d in v.shape.dims
            if d.name == EXPERTS_DIM}.pop()
    num_experts.add(size)
    k = _experts_per_token(call.layer)
    per_token.add(k)
    layer_flops = sum(_matmul_flops(op) for op in layer_ops)
    # An expert matmul reads an expert kernel (maybe through a cast, which
    # keeps the shape); activations always carry token dims besides.
    kernel_shapes = [v.shape for v in experts]
    expert_matmuls = sum(
        _matmul_flops(op) for op in layer_ops
        if any(t.shape in kernel_shapes for t in op.inputs))
    routing_flops += layer_flops - expert_matmuls
    moe_flops += layer_flops
    # One expert FFN per routed token: 2 FLOPs per weight of one expert.
    total_flops += k * call.tokens * sum(2 * v.size // size for v in experts)
  total_flops -= moe_flops
  tokens_per_sequence = lengths["inputs"] + lengths["targets"]
  flops_per_sequence = total_flops // batch
  return {
      "params": sum(v.size for v in trainable),
      "expert_params": sum(v.size for v in trainable
                           if _has_experts_dim(v.shape)),
      "num_experts": max(num_experts, default=0),
      "moe_layers": moe_layers,
      "experts_per_token": max(per_token, default=0),
      "flops_per_sequence": flops_per_sequence,
      "flops_per_token": flops_per_sequence // tokens_per_sequence,
      "routing_flops_per_token":
          routing_flops // batch // tokens_per_sequence,
  }


def measure(gin_files: Sequence[str],
            gin_params: Sequence[str] = (),
            mesh_shape: Optional[str] = None,
            layout_rules: Optional[str] = None,
            memory_budget_gb: Optional[float] = None,
            vocab_size: int = DEFAULT_VOCAB_SIZE) -> Dict[str, Any]:
  """Measures the model a gin config describes under a mesh layout.

  Args:
    gin_files: gin files as given to the t5 CLI (`models/switch_base.gin`).
    gin_params: extra gin bindings, applied last.
    mesh_shape: overrides `utils.run.mesh_shape`, e.g. "batch:16,model:8".
    layout_rules: overrides `utils.run.layout_rules`.
    memory_budget_gb: if set, weights + Adafactor state per device over this
      many GiB raise StatsError.
    vocab_size: input and output vocabulary size before Mesh TF's padding.

  Returns:
    A JSON-serialisable dict (keys documented in the module docstring).

  Raises:
    StatsError: the gin config does not parse, the model cannot be built or
      laid out on the mesh, or it does not fit the memory budget.
  """
  try:
    gin_config.parse(gin_files, gin_params)
  except (ValueError, IOError) as e:
    raise StatsError("gin files %s with params %s do not parse: %s" % (
        list(gin_files), list(gin_params), e)) from e
  model_type = gin_config.run_arg("model_type")
  if model_type != "bitransformer":
    raise StatsError("model_stats measures bitransformers (encoder-decoder); "
                     "utils.run.model_type is %r." % model_type)
  mesh = _mesh_shape(mesh_shape)
  rules = mtf.convert_to_layout_rules(
      layout_rules if layout_rules is not None
      else gin_config.run_arg("layout_rules"))
  lengths = _sequence_lengths()
  batch = _batch_size(lengths, mesh, rules)
  with tf.Graph().as_default(), tf.variable_scope(
      "", custom_getter=_declare_only), dispatch.assume_tpu():
    graph, calls = _build_graph(model_type, vocab_size, mesh, rules, batch,
                                lengths)
  trainable = list(graph.trainable_variables)
  stats = _count(graph, calls, trainable, batch, lengths)
  params_per_device, weight_bytes, adafactor_bytes = _memory_per_device(
      trainable, mesh, rules)
  total_bytes = weight_bytes + adafactor_bytes
  if memory_budget_gb is not None and total_bytes > memory_budget_gb * _GIB:
    raise StatsError(
        "needs %.2f GiB per device for weights and Adafactor state (%.2f + "
        "%.2f) on mesh %s, over the budget of %.2f GiB. Use more devices, or "
        "split experts (experts:batch), d_ff and heads (model dimension) "
        "over larger mesh dimensions." % (
            total_bytes / _GIB, weight_bytes / _GIB, adafactor_bytes / _GIB,
            _shape_str(mesh), memory_budget_gb))
  return {
      "gin_files": list(gin_files),
      "gin_params": list(gin_params),
      "mesh_shape": _shape_str(mesh),
      "layout_rules": _layout_str(rules),
      "num_devices": mesh.size,
      "batch_size": batch,
      "sequence_length": lengths,
      **stats,
      "params_per_device": params_per_device,
      "weights_bytes_per_device": weight_bytes,
      "adafactor_bytes_per_device": adafactor_bytes,
      "weights_gib_per_device": round(weight_bytes / _GIB, 3),
      "adafactor_gib_per_device": round(adafactor_bytes / _GIB, 3),
      "total_gib_per_device": round(total_bytes / _GIB, 3),
  }
