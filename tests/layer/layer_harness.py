"""Builds, lowers and runs one MoE layer inside a real Mesh TF LayerStack.

Shared by the layer tests: the layer is called exactly as a Transformer calls
it (LayerStack -> sublayer_call_layer -> scope named after the class), on a
placement mesh, with chosen weights written into its variables.
"""

import dataclasses
from typing import Callable, Dict, List, Optional

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
from mesh_tensorflow.transformer import transformer
import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.layer import standalone

tf.disable_v2_behavior()
# Resource variables: reads are snapshots, so a step's backward pass never sees
# weights that its own updates already changed (ref variables would race).
tf.enable_resource_variables()

TRAIN = tf.estimator.ModeKeys.TRAIN
EVAL = tf.estimator.ModeKeys.EVAL
SCOPE = "encoder"
LAYER_NAME = "layer_000"


@dataclasses.dataclass
class Result:
  output: np.ndarray  # of the last run
  outputs: List[np.ndarray]  # one per run
  aux_loss: float
  variables: Dict[str, np.ndarray]  # after the run (and the SGD step)
  initial_variables: Dict[str, np.ndarray]
  summaries: Dict[str, float]  # tag -> value of merged tf summaries
  extra: Dict[str, np.ndarray]
  # variable name -> [(device, slice shape)], how the mesh placed it.
  slices: Dict[str, List[tuple]]


def run_layer(make_layer: Callable[[], transformer.TransformerLayer],
              x: np.ndarray,
              sequence_id: Optional[np.ndarray] = None,
              weights: Optional[Dict[str, np.ndarray]] = None,
              mode: str = TRAIN,
              mesh_shape: str = "",
              layout: str = "",
              devices: Optional[List[str]] = None,
              activation_dtype: tf.DType = tf.float32,
              sgd_learning_rate: Optional[float] = None,
              train_steps: int = 1,
              restore_from: Optional[str] = None,
              save_to: Optional[str] = None,
              num_microbatches: int = 1,
              incremental: bool = False,
              collect_losses: bool = True,
              runs: int = 1,
              session_config: Optional[tf.ConfigProto] = None,
              extra: Optional[Callable] = None,
              seed: int = 0) -> Result:
  """Runs the layer on x [batch, length, d_model]; returns numpy values.

  weights: variable name (e.g. "encoder/layer_000/MoE1D/wi/kernel") ->
    value written into the layer's variables before running.
  sgd_learning_rate: if set, after the runs applies `train_steps` SGD steps
    on sum(y) + aux loss.
  restore_from / save_to: checkpoint prefixes read before the runs (instead
    of `weights`) / written at the end.
  incremental: call the layer without the length dim (decoding), length 1.
  collect_losses: give the Context a loss list (None when decoding).
  extra: fn(graph, outputs) -> {name: mtf tensor} to fetch as well.
  """
  tf.reset_default_graph()
  tf.set_random_seed(seed)
  graph = mtf.Graph()
  mesh = mtf.Mesh(graph, "mesh")
  batch, length, d_model = x.shape
  batch_dim = mtf.Dimension("batch", batch)
  length_dim = mtf.Dimension("length", length)
  model_dim = mtf.Dimension("d_model", d_model)
  model = standalone.StandInModel(layout=layout, mesh_shape=mesh_shape,
                                     model_dim=model_dim)
  variable_dtype = mtf.VariableDType(tf.float32, tf.float32, activation_dtype)

  if incremental:
    assert length == 1
    x_shape = [batch_dim, model_dim]
    x_value = x[:, 0, :]
  else:
    x_shape = [batch_dim, length_dim, model_dim]
    x_value = x
  mtf_x = mtf.import_fully_replicated(
      mesh, tf.constant(x_value, tf.float32), mtf.Shape(x_shape))
  mtf_x = mtf.cast(mtf_x, activation_dtype)
  mtf_sequence_id = None
  if sequence_id is not None:
    mtf_sequence_id = mtf.import_fully_replicated(
        mesh, tf.constant(sequence_id, tf.int32),
        mtf.Shape([batch_dim, length_dim]))
  losses = [] if collect_losses else None
  context = transformer.Context(
      model=model, mesh=mesh, batch_dims=[batch_dim], length_dim=length_dim,
      variable_dtype=variable_dtype,
      mode="incremental" if incremental else mode,
      sequence_id=mtf_sequence_id, losses=losses,
      num_microbatches=num_microbatches,
      # Attention layers read positions (FFN layers do not).
      position=None if incremental else mtf.range(mesh, length_dim,
                                                  tf.int32))
  layer = make_layer()
  layer.set_name(LAYER_NAME)
  stack = transformer.LayerStack(
      [layer], sublayers_initial=[],
      sublayers_per_layer=[transformer.sublayer_call_layer],
      sublayers_final=[])
  with tf.variable_scope(SCOPE):
    y = stack.call(context, mtf_x)
  aux = mtf.add_n(losses) if losses else mtf.constant(mesh, 0.0)
  y = mtf.cast(y, tf.float32)
  aux = mtf.cast(aux, tf.float32)
  extra_tensors = extra(graph, y, aux) if extra else {}

  grad_tensors = {}
  if sgd_learning_rate is not None:
    objective = mtf.reduce_sum(y) + aux
    variables = graph.trainable_variables
    grads = mtf.gradients([objective], [v.outputs[0] for v in variables])
    grad_tensors = {v.name: g for v, g in zip(variables, grads)
                    if g is not None}

  shape = mtf.convert_to_shape(mesh_shape)
  mesh_impl = placement_mesh_impl.PlacementMeshImpl(
      shape=shape, layout=mtf.convert_to_layout_rules(layout),
      devices=devices or [""] * shape.size)
  lowering = mtf.Lowering(graph, {mesh: mesh_impl}, autostack=False)
  tf_y = lowering.export_to_tf_tensor(y)
  if incremental:
    tf_y = tf.expand_dims(tf_y, 1)
  tf_aux = lowering.export_to_tf_tensor(aux)
  tf_extra = {k: lowering.export_to_tf_tensor(v)
              for k, v in extra_tensors.items()}
  tf_grads = {k: lowering.export_to_tf_tensor(g)
              for k, g in grad_tensors.items()}
  tf_vars = {v.name: v.outputs[0] for v in graph.all_variables}
  tf_var_values = {k: lowering.export_to_tf_tensor(v)
                   for k, v in tf_vars.items()}
  summary_op = tf.summary.merge_all()
  slices = {v.name: [(t.device, tuple(t.shape.as_list())) for t in
                     lowering.variables[v].laid_out_tensor.tensor_list]
            for v in graph.all_variables}

  with tf.Session(config=session_config) as sess:
    sess.run(tf.global_variables_initializer())
    sess.run(tf.local_variables_initializer())
    if weights:
      masters = {v.op.name: v for v in tf.global_variables()}
      for name, value in weights.items():
        if name not in masters:
          raise KeyError("no variable %r; have %s" % (name, sorted(masters)))
        masters[name].load(value, sess)
    saver = tf.train.Saver(tf.global_variables())
    if restore_from:
      saver.restore(sess, restore_from)
    sess.run(lowering.copy_masters_to_slices())
    initial = sess.run(tf_var_values)
    fetches = {"y": tf_y, "aux": tf_aux, "extra": tf_extra}
    if summary_op is not None:
      fetches["summary"] = summary_op
    summaries, outputs = {}, []
    for _ in range(runs):
      out = sess.run(fetches)
      outputs.append(out["y"])
      if "summary" in out:
        summaries = _parse_summary(out["summary"])
    masters = {v.op.name: v for v in tf.global_variables()}
    for _ in range(train_steps if tf_grads else 0):
      # Gradients first, then the SGD update: in one session.run TF1 may
      # assign some weights before the backward pass has read them.
      values, grads_now = sess.run([tf_var_values, tf_grads])
      for name, grad in grads_now.items():
        masters[name].load(values[name] - sgd_learning_rate * grad, sess)
      sess.run(lowering.copy_masters_to_slices())
    final = sess.run(tf_var_values)
    if save_to:
      sess.run(lowering.copy_slices_to_masters())
      saver.save(sess, save_to)
  return Result(output=out["y"], outputs=outputs, aux_loss=float(out["aux"]),
                variables=final, initial_variables=initial,
                summaries=summaries, extra=out["extra"], slices=slices)


def _parse_summary(serialized: bytes) -> Dict[str, float]:
  summary = tf.Summary()
  summary.ParseFromString(serialized)
  return {v.tag: v.simple_value for v in summary.value}


def switch_weights(rng: np.random.RandomState, d_model: int, num_experts: int,
                   hidden: int, scale: float = 1.0, gated: bool = False,
                   prefix: str = SCOPE + "/" + LAYER_NAME + "/MoE1D"):
  """Random router/expert weights keyed by MoE1D variable names."""
  weights = {
      prefix + "/switch_gating/kernel":
          rng.randn(d_model, num_experts).astype(np.float32) * scale,
      prefix + "/wo/kernel":
          rng.randn(num_experts, hidden, d_model).astype(np.float32)
          / np.sqrt(hidden),
  }
  wi = lambda: rng.randn(num_experts, d_model, hidden).astype(  # pylint: disable=g-long-lambda
      np.float32) / np.sqrt(d_model)
  if gated:
    weights[prefix + "/wi_0/kernel"] = wi()
    weights[prefix + "/wi_1/kernel"] = wi()
  else:
    weights[prefix + "/wi/kernel"] = wi()
  return weights
