"""T5X checkpoints written in T5X's own layout, for the T5X import tests.

The parameter names are flaxformer's (T5 / MoE architectures), spelled out
here independently of t5x_names.py; the files are what T5X's Checkpointer
writes: `checkpoint_<step>/checkpoint`, flax's msgpack of {'version',
'optimizer': {'target', 'state'}}, with each large parameter replaced by
the TensorStore spec of a gzip-compressed zarr array stored beside it under
a relative path (`target.encoder.layers_0.mlp.wi.kernel`) and small ones
inline. `data=False` writes the zarr metadata without chunks: the layout of
a released size without its hundreds of gigabytes.
"""

import dataclasses
import os
from typing import Dict, Tuple

from flax import serialization
import ml_dtypes
import numpy as np
import tensorstore

VOCAB = 8192  # our embedded SentencePiece model: 8000 pieces + 100 -> 8192


@dataclasses.dataclass(frozen=True)
class Shape:
  """A T5 / Switch model as flaxformer's gin would describe it."""
  d_model: int
  d_ff: int
  num_heads: int
  d_kv: int
  encoder_layers: int
  decoder_layers: int
  num_experts: int = 0
  every_ffn_sparse: bool = False  # else layers 1, 3, 5, ... when experts
  gated: bool = False  # ('gelu', 'linear') MLPs
  tied: bool = True  # no logits_dense
  split_heads: bool = False  # attention kernels [d_model, heads, d_kv]
  vocab: int = VOCAB


def parameter_shapes(shape: Shape) -> Dict[str, Tuple[int, ...]]:
  """flaxformer parameter path (under 'target') -> array shape."""
  d, h, k = shape.d_model, shape.num_heads, shape.d_kv
  params = {"token_embedder/embedding": (shape.vocab, d)}
  projection_in = (d, h, k) if shape.split_heads else (d, h * k)
  projection_out = (h, k, d) if shape.split_heads else (h * k, d)
  wis = ("wi_0", "wi_1") if shape.gated else ("wi",)
  for stack, layers in (("encoder", shape.encoder_layers),
                        ("decoder", shape.decoder_layers)):
    params["%s/relpos_bias/rel_embedding" % stack] = (h, 32)
    attentions = (("attention", "pre_attention_layer_norm"),)
    if stack == "decoder":
      attentions = (("self_attention", "pre_self_attention_layer_norm"),
                    ("encoder_decoder_attention",
                     "pre_cross_attention_layer_norm"))
    for i in range(layers):
      prefix = "%s/layers_%d/" % (stack, i)
      for attention, norm in attentions:
        params[prefix + norm + "/scale"] = (d,)
        for name in ("query", "key", "value"):
          params["%s%s/%s/kernel" % (prefix, attention, name)] = projection_in
        params["%s%s/out/kernel" % (prefix, attention)] = projection_out
      params[prefix + "pre_mlp_layer_norm/scale"] = (d,)
      sparse = shape.num_experts and (shape.every_ffn_sparse or i % 2 == 1)
      if sparse:
        e = shape.num_experts
        params[prefix + "mlp/router/router_weights/w/kernel"] = (d, e)
        for wi in wis:
          params["%smlp/expert/%s/kernel" % (prefix, wi)] = (e, d, shape.d_ff)
        params[prefix + "mlp/expert/wo/kernel"] = (e, shape.d_ff, d)
      else:
        for wi in wis:
          params["%smlp/%s/kernel" % (prefix, wi)] = (d, shape.d_ff)
        params[prefix + "mlp/wo/kernel"] = (shape.d_ff, d)
    params["%s/%s_norm/scale" % (stack, stack)] = (d,)
  if not shape.tied:
    params["decoder/logits_dense/kernel"] = (d, shape.vocab)
  return params


def random_values(shape: Shape, dtype=np.float32,
                  seed: int = 0) -> Dict[str, np.ndarray]:
  rng = np.random.RandomState(seed)
  return {name: rng.normal(0, 0.1, dims).astype(np.float32).astype(dtype)
          for name, dims in parameter_shapes(shape).items()}


def write(directory: str, step: int, values: Dict[str, np.ndarray] = None,
          shapes: Dict[str, Tuple[int, ...]] = None, data: bool = True,
          version: int = 3) -> str:
  """Writes `<directory>/checkpoint_<step>/`; returns its path.

  Norms and the relative bias go inline in the msgpack, the rest to
  TensorStore. Version 2 stores bfloat16 as uint16 bits, as T5X did.
  """
  path = os.path.join(directory, "checkpoint_%d" % step)
  os.makedirs(path)
  shapes = shapes or {n: v.shape for n, v in values.items()}
  target = {}
  for name, dims in shapes.items():
    array = values[name] if data else None
    dtype = array.dtype if data else np.dtype(ml_dtypes.bfloat16)
    if data and version < 3 and dtype == ml_dtypes.bfloat16:
      array, dtype = array.view(np.uint16), np.dtype(np.uint16)
    if data and ("norm" in name or "relpos" in name):
      leaf = array
    else:
      relative = "target." + name.replace("/", ".")
      metadata = {"chunks": [max(1, dims[0] // 2)] + list(dims[1:]),
                  "compressor": {"id": "gzip"},
                  "dtype": "bfloat16" if dtype == ml_dtypes.bfloat16
                           else dtype.str,
                  "shape": list(dims)}
      store = tensorstore.open(
          {"driver": "zarr", "metadata": metadata,
           "kvstore": {"driver": "file",
                       "path": os.path.join(path, relative)}},
          create=True).result()
      if data:
        store.write(array).result()
      leaf = {"driver": "zarr", "kvstore": {"driver": "file",
                                            "path": relative},
              "metadata": metadata}
    node = target
    parts = name.split("/")
    for part in parts[:-1]:
      node = node.setdefault(part, {})
    node[parts[-1]] = leaf
  contents = {"version": version,
              "optimizer": {"target": target,
                            "state": {"step": np.int32(step),
                                      "param_states": {"note": np.zeros(1)}}}}
  with open(os.path.join(path, "checkpoint"), "wb") as f:
    f.write(serialization.msgpack_serialize(contents))
  return path
