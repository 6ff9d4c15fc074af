"""Runs a converted model dir through Mesh TF on CPU: logits and routes.

The graph is Mesh TF's own: utils.build_model under the model dir's gin
(as the CLI builds it), call_simple in eval mode, lowered on a one-device
placement mesh, restored from the checkpoint with a plain Saver (the master
variables carry the checkpoint names) and copied to the slices, as Mesh
TF's restore hook does. Besides the logits it fetches every Switch layer's
router logits: the outputs of the einsums that read a `switch_gating`
kernel (the router's dense layer), laid out [tokens, experts] in the
batch-major order of the inputs when one routing group holds the batch.
"""

import dataclasses
from typing import Dict, Sequence

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
from mesh_tensorflow.transformer import utils
import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.checkpoints import mtf_model

FLOAT32_PARAMS = ("utils.get_variable_dtype.activation_dtype = 'float32'",
                  "utils.get_variable_dtype.slice_dtype = 'float32'")


@dataclasses.dataclass
class Outputs:
  logits: np.ndarray  # [batch, target length, vocab]
  router_logits: Dict[str, np.ndarray]  # kernel name -> [tokens, experts]


def run(checkpoint_prefix: str, gin_files: Sequence[str],
        inputs: np.ndarray, targets: np.ndarray,
        gin_params: Sequence[str] = ()) -> Outputs:
  """Mesh TF logits of `targets` given `inputs` (both [batch, length])."""
  mtf_model.parse(gin_files, list(gin_params) + list(FLOAT32_PARAMS))
  shapes = tf.train.load_checkpoint(
      checkpoint_prefix).get_variable_to_shape_map()
  vocab_size = shapes["shared/embedding"][0]
  model = mtf_model.build(vocab_size)
  with tf.Graph().as_default():
    graph = mtf.Graph()
    mesh = mtf.Mesh(graph, "forward_mesh")
    batch = mtf.Dimension("batch", inputs.shape[0])

    def tokens(ids):
      return mtf.import_fully_replicated(
          mesh, tf.constant(ids, tf.int32),
          mtf.Shape([batch, mtf.Dimension("length", ids.shape[1])]))

    logits, _ = model.call_simple(
        inputs=tokens(inputs), targets=tokens(targets), compute_loss=False,
        mode=tf.estimator.ModeKeys.EVAL,
        variable_dtype=utils.get_variable_dtype())
    routers = _router_logits(graph)
    mesh_impl = placement_mesh_impl.PlacementMeshImpl(
        shape=[], layout={}, devices=[""])
    lowering = mtf.Lowering(graph, {mesh: mesh_impl})
    fetches = {"logits": lowering.export_to_tf_tensor(logits)}
    fetches.update({name: lowering.export_to_tf_tensor(t)
                    for name, t in routers.items()})
    saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as session:
      saver.restore(session, checkpoint_prefix)
      session.run(lowering.copy_masters_to_slices())
      values = session.run(fetches)
  logits = values.pop("logits")
  return Outputs(logits, {
      name: value.reshape(-1, value.shape[-1])
      for name, value in values.items()})


def _router_logits(graph: mtf.Graph) -> Dict[str, mtf.Tensor]:
  """kernel name -> output of the einsum that applies the router kernel."""
  kernels = {v.outputs[0]: v.name for v in graph.all_variables
             if v.name.endswith("/switch_gating/kernel")}
  # The kernel may be read through a cast to the router's dtype.
  for op in graph.operations:
    if op.inputs and op.inputs[0] in kernels and len(op.inputs) == 1:
      kernels[op.outputs[0]] = kernels[op.inputs[0]]
  found = {}
  for op in graph.operations:
    if isinstance(op, mtf.EinsumOperation):
      for tensor in op.inputs:
        if tensor in kernels:
          found[kernels[tensor]] = op.outputs[0]
  return found
