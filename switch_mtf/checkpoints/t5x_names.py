"""T5X (flaxformer) names of each Mesh TF variable, and the model they imply.

flaxformer's T5 / MoE architectures name layer i of a stack `layers_<i>`:
`attention` (encoder) or `self_attention` and `encoder_decoder_attention`
(decoder) with `query`, `key`, `value`, `out` kernels and
`pre_{attention,self_attention,cross_attention,mlp}_layer_norm` scales; a
dense FFN `mlp/{wi,wi_0,wi_1,wo}/kernel`, a sparse one
`mlp/router/router_weights/w/kernel` and `mlp/expert/{wi,...}/kernel`;
`token_embedder/embedding`, `{encoder,decoder}/relpos_bias/rel_embedding`,
`encoder/encoder_norm`, `decoder/decoder_norm` and, for separate logits,
`decoder/logits_dense/kernel`. The switch_classic checkpoints were converted
from Mesh TF, so their arrays have Mesh TF's layouts; attention kernels with
the heads split out ([d_model, heads, d_kv]) are reshaped.

A T5X checkpoint carries no config: `infer_architecture` reads the model
from the tensors' names and shapes, and the routing of the release with
that shape (released.py). Non-gated FFNs are read as ReLU, as in every
released Switch and T5.1.0 model.
"""

import re
from typing import List, Optional, Tuple

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import released
from switch_mtf.checkpoints import tensor_plan
from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints.errors import ConversionError

EMBEDDING = "token_embedder/embedding"
LOGITS = "decoder/logits_dense/kernel"
_ATTENTION = {(architecture.ENCODER, mtf_names.SELF_ATTENTION): "attention",
              (architecture.DECODER, mtf_names.SELF_ATTENTION):
                  "self_attention",
              (architecture.DECODER, mtf_names.CROSS_ATTENTION):
                  "encoder_decoder_attention"}
_NORMS = {(architecture.ENCODER, mtf_names.SELF_ATTENTION):
              "pre_attention_layer_norm",
          (architecture.DECODER, mtf_names.SELF_ATTENTION):
              "pre_self_attention_layer_norm",
          (architecture.DECODER, mtf_names.CROSS_ATTENTION):
              "pre_cross_attention_layer_norm"}
_PROJECTIONS = {"q": "query", "k": "key", "v": "value", "o": "out"}
_FINAL_NORMS = {architecture.ENCODER: "encoder/encoder_norm/scale",
                architecture.DECODER: "decoder/decoder_norm/scale"}
_LAYER = re.compile(r"^(encoder|decoder)/layers_(\d+)/")


def name(param: mtf_names.Param) -> str:
  """The T5X parameter path of a Mesh TF variable."""
  if param.part == mtf_names.EMBEDDING:
    return EMBEDDING
  if param.part == mtf_names.LOGITS:
    return LOGITS
  if param.part == mtf_names.RELATIVE_BIAS:
    return "%s/relpos_bias/rel_embedding" % param.stack
  if param.part == mtf_names.FINAL_NORM:
    return _FINAL_NORMS[param.stack]
  if param.part == mtf_names.POSITION_EMBEDDING:
    raise ConversionError("T5X T5 models have no absolute position table.")
  layer = "%s/layers_%d/" % (param.stack, param.layer)
  sublayer, weight = param.sublayer, param.weight
  if sublayer in (mtf_names.FFN, mtf_names.MOE):
    if weight == mtf_names.NORM:
      return layer + "pre_mlp_layer_norm/scale"
    if weight == mtf_names.ROUTER:
      return layer + "mlp/router/router_weights/w/kernel"
    expert = "expert/" if sublayer == mtf_names.MOE else ""
    return "%smlp/%s%s/kernel" % (layer, expert, weight)
  if weight == mtf_names.NORM:
    return layer + _NORMS[(param.stack, sublayer)] + "/scale"
  return "%s%s/%s/kernel" % (layer, _ATTENTION[(param.stack, sublayer)],
                             _PROJECTIONS[weight])


def mappings(arch: architecture.Architecture,
             source: tensor_source.TensorSource
             ) -> List[tensor_plan.Mapping]:
  """The T5X source of every Mesh TF variable (all in Mesh TF's layout)."""
  found = []
  present = set(source.names())
  for param in mtf_names.params(arch):
    path = name(param)
    split_heads = _split_heads_shape(param, arch)
    if (split_heads and path in present
        and tuple(source.shape(path)) == split_heads):
      found.append(tensor_plan.Mapping(param, (path,), tensor_plan.RESHAPE,
                                       split_heads))
    else:
      found.append(tensor_plan.Mapping(param, (path,), tensor_plan.COPY))
  return found


def _split_heads_shape(param: mtf_names.Param,
                       arch: architecture.Architecture
                       ) -> Optional[Tuple[int, ...]]:
  if param.sublayer not in (mtf_names.SELF_ATTENTION,
                            mtf_names.CROSS_ATTENTION) or (
                                param.weight == mtf_names.NORM):
    return None
  heads = (arch.num_heads, arch.d_kv)
  if param.weight == "o":
    return heads + (arch.d_model,)
  return (arch.d_model,) + heads


def infer_architecture(source: tensor_source.TensorSource,
                       path: str) -> Tuple[architecture.Architecture, str]:
  """The model a T5X checkpoint's tensors describe, and its routing source."""
  shapes = {n: tuple(source.shape(n)) for n in source.names()}

  def need(key: str) -> Tuple[int, ...]:
    if key not in shapes:
      raise ConversionError("%s has no parameter %s; not a T5 / Switch "
                            "Transformer checkpoint." % (path, key))
    return shapes[key]

  vocab_size, d_model = need(EMBEDDING)
  heads, buckets = need("encoder/relpos_bias/rel_embedding")
  query = need("encoder/layers_0/attention/query/kernel")
  d_kv = query[-1] if len(query) == 3 else query[-1] // heads
  layers = {s: sorted({int(m.group(2)) for m in map(_LAYER.match, shapes)
                       if m and m.group(1) == s}) for s in architecture.STACKS}
  stacks = {}
  for stack, indices in layers.items():
    if indices != list(range(len(indices))) or not indices:
      raise ConversionError("%s: %s layers %s are not layers_0.._%d."
                            % (path, stack, indices, len(indices) - 1))
    stacks[stack] = architecture.Stack(len(indices), tuple(
        i for i in indices if "%s/layers_%d/mlp/router/router_weights/w/kernel"
        % (stack, i) in shapes))
  gated = any(n.endswith("/mlp/wi_0/kernel") or
              n.endswith("/mlp/expert/wi_0/kernel") for n in shapes)
  wo = [s for n, s in shapes.items() if n.endswith("/wo/kernel")]
  experts = [s[0] for n, s in shapes.items()
             if n.endswith("/mlp/expert/wo/kernel")]
  fields = dict(
      vocab_size=vocab_size, d_model=d_model, d_ff=wo[0][-2] if wo else 0,
      num_heads=heads, d_kv=d_kv, encoder=stacks[architecture.ENCODER],
      decoder=stacks[architecture.DECODER],
      activation="geglu" if gated else "relu",
      tied_embeddings=LOGITS not in shapes, relative_buckets=buckets,
      num_experts=experts[0] if experts else 0,
      routing=released.DEFAULT_ROUTING if experts else None)
  try:
    arch = architecture.Architecture(**fields)
  except ConversionError as e:
    raise ConversionError("%s: %s" % (path, e)) from e
  if not arch.is_sparse:
    return arch, ""
  release = released.match(arch)
  if release:
    return (architecture.Architecture(**dict(fields, routing=release.routing)),
            "the released %s config (T5X, no router jitter)" % release.name)
  return arch, ("the Switch layer's defaults without router jitter (T5X "
                "releases have none); no release has this shape")
