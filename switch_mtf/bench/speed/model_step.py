"""One full training step of a whole model, built from the CLI's gin files.

Times forward + backward + Adafactor update of a bitransformer exactly as
gin describes it (the same files `switch_mtf_transformer` takes), without
the input pipeline, so models compare on model cost alone: switch_tiny vs
t5_tiny, and switch_tiny as its expert count doubles at fixed FLOPs per
token (the paper's Figure 4 axis). Inputs are random token ids of the
configured lengths, every position real (as packed pretraining batches are).
Each model gets its own tf.Graph and Session; gin is re-parsed per model
before its graph is built (layers read gin when constructed), so several
models coexist in one process for round-robin timing.
"""

import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
from mesh_tensorflow.transformer import utils
import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.analysis import model_stats
from switch_mtf.bench.common import tiny_models
from switch_mtf.bench.speed import layer_graph

# What the CLI binds without --tpu (mesh_transformer_main): float32 slices
# and activations. Precision experiments override the activation dtype.
CPU_DTYPE_PARAMS = (
    "utils.get_variable_dtype.slice_dtype = 'float32'",
)
# The embedded SentencePiece vocabulary: 8000 pieces + 100 sentinels.
EMBEDDED_VOCAB_SIZE = 8100
LEARNING_RATE = 0.01
# runs/cpu_tiny.gin's rules: on a one-device mesh they split nothing.
DEFAULT_LAYOUT = ("ensemble:ensemble,batch:batch,d_ff:model,heads:model,"
                  "vocab:model,experts:batch")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A model as CLI gin files + bindings, at one batch shape."""
  name: str
  gin_files: Tuple[str, ...]
  gin_params: Tuple[str, ...] = ()
  batch: int = 32
  inputs_length: int = 128
  targets_length: int = 32
  activation_dtype: str = "float32"
  mesh_shape: str = ""  # "" = one device
  layout: str = DEFAULT_LAYOUT

  @property
  def tokens(self) -> int:
    return self.batch * (self.inputs_length + self.targets_length)

  def as_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


class BuiltModel:
  """A lowered training step of one model, with its own graph and session."""

  def __init__(self, spec: ModelSpec, threads: int = 0, seed: int = 0,
               devices: Optional[Sequence[str]] = None, target: str = "",
               config: Optional[tf.ConfigProto] = None):
    """devices: one per mesh slice (default: the session's default device);
    target and config: of the session (e.g. a cluster's chief server)."""
    self.spec = spec
    model_stats.parse_gin(
        spec.gin_files, tuple(spec.gin_params) + CPU_DTYPE_PARAMS + (
            "utils.get_variable_dtype.activation_dtype = '%s'"
            % spec.activation_dtype,))
    self.graph = tf.Graph()
    with self.graph.as_default():
      tf.set_random_seed(seed)
      (self.train_op, self.loss, copy_to_slices, self.params,
       self.expert_params) = _build(spec, seed, devices)
      init = [tf.global_variables_initializer(),
              tf.local_variables_initializer()]
      self.session = tf.Session(
          target, graph=self.graph,
          config=config or layer_graph.session_config(threads))
      self.session.run(init)
      self.session.run(copy_to_slices)

  def step(self) -> float:
    return float(self.session.run([self.train_op, self.loss])[1])

  def close(self) -> None:
    self.session.close()


def _build(spec: ModelSpec, seed: int, devices: Optional[Sequence[str]]):
  layout = mtf.convert_to_layout_rules(spec.layout)
  mesh_shape = mtf.convert_to_shape(spec.mesh_shape)
  model = utils.build_model("bitransformer", EMBEDDED_VOCAB_SIZE,
                            EMBEDDED_VOCAB_SIZE, layout, mesh_shape)
  graph = mtf.Graph()
  mesh = mtf.Mesh(graph, "bench_mesh")
  rng = np.random.RandomState(seed)
  batch_dim = mtf.Dimension("batch", spec.batch)

  def tokens(length):
    ids = rng.randint(2, EMBEDDED_VOCAB_SIZE, size=(spec.batch, length))
    return mtf.import_fully_replicated(
        mesh, tf.constant(ids, tf.int32),
        mtf.Shape([batch_dim, mtf.Dimension("length", length)]))

  _, loss = model.call_simple(
      inputs=tokens(spec.inputs_length), targets=tokens(spec.targets_length),
      compute_loss=True, mode=tf.estimator.ModeKeys.TRAIN,
      variable_dtype=utils.get_variable_dtype())
  loss = mtf.cast(loss, tf.float32)
  variables = graph.trainable_variables
  grads = mtf.gradients([loss], [v.outputs[0] for v in variables])
  global_step = tf.train.get_or_create_global_step()
  optimizer = mtf.optimize.AdafactorOptimizer(learning_rate=LEARNING_RATE)
  updates = optimizer.apply_grads(grads, variables)
  mesh_impl = placement_mesh_impl.PlacementMeshImpl(
      shape=mesh_shape, layout=layout,
      devices=list(devices or [""] * mesh_shape.size))
  lowering = mtf.Lowering(graph, {mesh: mesh_impl}, autostack=True)
  tf_loss = lowering.export_to_tf_tensor(loss)
  train_op = tf.group([lowering.lowered_operation(op) for op in updates]
                      + [tf.assign_add(global_step, 1)])
  params = sum(v.size for v in variables)
  expert_params = sum(v.size for v in variables
                      if any(d.name == "experts" for d in v.shape.dims))
  return (train_op, tf_loss, lowering.copy_masters_to_slices(), params,
          expert_params)


def tiny_specs(experts: Sequence[int]) -> Dict[str, ModelSpec]:
  """t5_tiny and switch_tiny at each expert count (same FLOPs per token)."""
  specs = {"t5_tiny": ModelSpec("t5_tiny", (tiny_models.DENSE_GIN,))}
  for e in experts:
    name = "switch_tiny_E%d" % e
    specs[name] = ModelSpec(name, (tiny_models.SWITCH_GIN,),
                            ("num_experts = %d" % e,))
  return specs


def gather_switch_spec(suffix: str = "", extra_params: Sequence[str] = (),
                       activation_dtype: str = "float32") -> ModelSpec:
  """switch_tiny E8 with the claims' gather dispatch, `..._gather<suffix>`."""
  return ModelSpec("switch_tiny_E8_gather" + suffix, (tiny_models.SWITCH_GIN,),
                   ("num_experts = 8", tiny_models.CPU_DISPATCH,
                    *extra_params), activation_dtype=activation_dtype)


def precision_specs() -> Dict[str, ModelSpec]:
  """Paper Table 2's three precisions, and dense at two, as whole steps.

  Switch uses the claims' gather dispatch (named like the gather model of
  the experts table); "bfloat16" keeps the router in float32 (selective
  precision), "bfloat16_router_bfloat16" does not.
  """
  specs = [
      ModelSpec("t5_tiny", (tiny_models.DENSE_GIN,)),
      ModelSpec("t5_tiny_bfloat16", (tiny_models.DENSE_GIN,),
                activation_dtype="bfloat16"),
      gather_switch_spec(),
      gather_switch_spec("_bfloat16", activation_dtype="bfloat16"),
      gather_switch_spec("_bfloat16_router_bfloat16",
                         ("Switch.router_dtype = 'bfloat16'",),
                         activation_dtype="bfloat16")]
  return {spec.name: spec for spec in specs}
