"""Sparse upcycling: a dense model dir -> a Switch model dir that starts there.

Komatsuzaki et al. 2022 ("Sparse Upcycling: Training Mixture-of-Experts
from Dense Checkpoints"; not in the Switch paper): every expert of a chosen
FFN starts as a copy of that dense FFN, the router starts from the Switch
paper's 0.1x initialisation (Mesh TF's VarianceScalingInitializer at scale
0.1, the draw a Switch model from scratch makes), and every other weight
is copied. Until the router learns to tell the copies apart the model
computes exactly the dense model's function scaled by the router's
top-1 probability in those layers. The global step is kept, so the
learning rate schedule continues where the dense model stopped
(gin/upcycle/continued_pretraining.gin).
"""

import dataclasses
import os
from typing import Dict, Iterator, Optional, Sequence, Tuple

import mesh_tensorflow as mtf
import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import model_dir as model_dir_lib
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_model
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import mtf_output
from switch_mtf.checkpoints import tensor_plan
from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints import vocabulary as vocabulary_lib
from switch_mtf.checkpoints.errors import ConversionError

EVERY_OTHER = "every_other"  # layers 1, 3, 5, ... as Switch and the releases
ALL = "all"
PLACEMENTS = (EVERY_OTHER, ALL)
ROUTER_INIT_SCALE = 0.1  # Switch paper §2.4 / Table 3
# Our Switch layer's defaults, the paper's (input jitter 0.01).
ROUTING = architecture.Routing(
    group_size=1024, capacity_factor_train=1.25, capacity_factor_eval=2.0,
    min_expert_capacity=4, jitter_eps=0.01, loss_coef=0.01,
    router_z_loss_coef=0.0)


def sparse_architecture(dense: architecture.Architecture, num_experts: int,
                        placement: str,
                        routing: architecture.Routing = ROUTING
                        ) -> architecture.Architecture:
  """The Switch model whose chosen FFNs replace the dense model's."""
  if dense.is_sparse:
    raise ConversionError("the model is already sparse (%d experts); "
                          "upcycle a dense model." % dense.num_experts)
  if placement not in PLACEMENTS:
    raise ConversionError("sparse layers %r: use %s." % (
        placement, " or ".join(PLACEMENTS)))
  if num_experts < 2:
    raise ConversionError("num_experts %d: upcycling needs >= 2 experts."
                          % num_experts)

  def stack(spec: architecture.Stack) -> architecture.Stack:
    return architecture.Stack(spec.num_layers, tuple(
        i for i in range(spec.num_layers)
        if placement == ALL or i % 2 == 1))

  encoder, decoder = stack(dense.encoder), stack(dense.decoder)
  if not encoder.sparse_layers and not decoder.sparse_layers:
    raise ConversionError("no FFN to upcycle: every stack has one layer "
                          "and %s picks layers 1, 3, ...; use %s."
                          % (EVERY_OTHER, ALL))
  return dataclasses.replace(dense, encoder=encoder, decoder=decoder,
                             num_experts=num_experts, routing=routing)


def router_init(d_model: int, num_experts: int, seed: int,
                scale: float = ROUTER_INIT_SCALE) -> np.ndarray:
  """A router kernel [d_model, experts] drawn as Mesh TF draws one."""
  initializer = mtf.layers.VarianceScalingInitializer(scale=scale)(
      [mtf.Dimension("d_model", d_model)],
      [mtf.Dimension("expert_unsplit", num_experts)])
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    value = initializer([d_model, num_experts], dtype=tf.float32)
    with tf.Session() as session:
      return session.run(value)


def upcycle(dense_dir: str, out_dir: str, num_experts: int,
            placement: str = EVERY_OTHER,
            gin_files: Optional[Sequence[str]] = None,
            gin_params: Sequence[str] = (), step: Optional[int] = None,
            seed: int = 0, vocabulary: Optional[str] = None,
            overwrite: bool = False,
            shard_bytes: int = mtf_checkpoint.DEFAULT_SHARD_BYTES
            ) -> mtf_output.Result:
  """Writes the upcycled Switch model dir of a dense Mesh TF model dir.

  Args:
    dense_dir: the dense model dir (converted, or trained with our CLI).
    out_dir: the Switch model dir to create.
    num_experts: experts per sparse FFN.
    placement: EVERY_OTHER (layers 1, 3, ...) or ALL.
    gin_files: the dense model's gin (default: the dir's model.gin, else
      its operative_config.gin).
    gin_params: extra bindings, as for the CLI.
    step: the dense checkpoint to start from (default: the latest).
    seed: seed of the routers' initialisation.
    vocabulary: SentencePiece model (default: the dir's, else the one the
      dense gin trains with).
    overwrite: replace an existing out_dir.
    shard_bytes: checkpoint shard size.
  """
  model_dir_lib.check_target(out_dir, overwrite)
  checkpoint = mtf_checkpoint.MtfCheckpoint(
      mtf_checkpoint.latest(dense_dir, step))
  vocab_size = checkpoint.shape("shared/embedding")[0] if (
      "shared/embedding" in checkpoint.names()) else 0
  gin_files = list(gin_files or mtf_model.model_gin_files(dense_dir))
  mtf_model.parse(gin_files, gin_params)
  dense = mtf_model.architecture_of(mtf_model.build(vocab_size), vocab_size)
  sparse = sparse_architecture(dense, num_experts, placement)
  tensor_plan.check_checkpoint(mtf_names.params(dense), checkpoint,
                               "the dense gin")
  dtype = checkpoint.single_dtype()
  vocabulary = vocabulary or vocabulary_lib.model_vocabulary(dense_dir,
                                                             gin_files)
  vocabulary_lib.check(vocabulary, vocab_size, checkpoint.prefix)
  return mtf_output.write(
      out_dir, overwrite, sparse,
      _tensors(dense, sparse, checkpoint, dtype, seed), dtype,
      checkpoint.step or 0, vocabulary,
      ["Sparse upcycling (tools/upcycle.py) of the dense model %s:"
       % checkpoint.prefix,
       "%d experts per sparse FFN (%s), each a copy of that FFN; routers "
       "from" % (num_experts, placement),
       "the 0.1x initialisation (seed %d). Continue pre-training with" % seed,
       "gin/upcycle/continued_pretraining.gin."],
      "the Switch layer's defaults (the paper's)", {
          "converted_by": "tools/upcycle.py",
          "source": checkpoint.prefix,
          "gin_files": [os.path.abspath(f) for f in gin_files],
          "gin_params": list(gin_params),
          "num_experts": num_experts,
          "placement": placement,
          "router_init_scale": ROUTER_INIT_SCALE,
          "seed": seed,
      }, shard_bytes)


def _tensors(dense: architecture.Architecture,
             sparse: architecture.Architecture,
             checkpoint: mtf_checkpoint.MtfCheckpoint, dtype: str,
             seed: int) -> Iterator[Tuple[str, np.ndarray]]:
  """The Switch model's variables from the dense checkpoint, one at a time."""
  dense_names: Dict[Tuple, str] = {
      (p.stack, p.layer, p.part): p.mtf_name for p in mtf_names.params(dense)}
  numpy_dtype = tensor_source.NUMPY_DTYPES[dtype]
  routers = 0
  for param in mtf_names.params(sparse):
    if param.sublayer != mtf_names.MOE:
      key = (param.stack, param.layer, param.part)
      yield param.mtf_name, checkpoint.read(dense_names[key])
    elif param.weight == mtf_names.ROUTER:
      kernel = router_init(sparse.d_model, sparse.num_experts,
                           seed * 1000 + routers)
      routers += 1
      yield param.mtf_name, kernel.astype(numpy_dtype)
    elif param.weight == mtf_names.NORM:
      yield param.mtf_name, checkpoint.read(dense_names[(
          param.stack, param.layer, mtf_names.FFN + "." + mtf_names.NORM)])
    else:
      ffn = checkpoint.read(dense_names[(
          param.stack, param.layer, mtf_names.FFN + "." + param.weight)])
      yield param.mtf_name, np.repeat(ffn[np.newaxis], sparse.num_experts,
                                      axis=0)

