"""The Mesh TF variables of an Architecture: names, shapes, and what each is.

Mesh TF names a variable after the layer stack's block and the layer's index
inside the block (`encoder/block_001/layer_002/SelfAttention/q`), where a
block is the repeating group of layers of the gin's `make_layer_stack`
(gin_emitter.py writes the same blocks). Every variable is listed as a
`Param`, which also says which logical weight it is (`part`, plus stack and
layer index for per-layer weights), so the other formats can name the same
weight their own way (hf_names.py, t5x_names.py).

Shapes are Mesh TF's: kernels [in, out], attention projections with heads
and d_kv merged ([d_model, heads * d_kv]), expert kernels stacked on a
leading experts dimension, the relative bias [heads, buckets].
"""

import dataclasses
from typing import List, Optional, Tuple

from switch_mtf.checkpoints import architecture

EMBEDDING = "embedding"
POSITION_EMBEDDING = "position_embedding"
LOGITS = "logits"
RELATIVE_BIAS = "relative_bias"
FINAL_NORM = "final_norm"
SELF_ATTENTION = "self_attention"
CROSS_ATTENTION = "cross_attention"
FFN = "ffn"
MOE = "moe"
NORM = "norm"
PROJECTIONS = ("q", "k", "v", "o")
ROUTER = "router"
GLOBAL_STEP = "global_step"

_MTF_LAYER = {SELF_ATTENTION: "SelfAttention",
              CROSS_ATTENTION: "EncDecAttention",
              FFN: "DenseReluDense",
              MOE: "MoE1D"}


@dataclasses.dataclass(frozen=True)
class Param:
  """One weight: its Mesh TF variable and which logical weight it is.

  `part` is "embedding", "logits", "relative_bias", "final_norm" or, for a
  per-layer weight, "<sublayer>.<weight>" with sublayer one of
  self_attention, cross_attention, ffn (dense FFN) and moe (Switch FFN) and
  weight one of norm, q, k, v, o, wi, wi_0, wi_1, wo, router.
  """
  mtf_name: str
  shape: Tuple[int, ...]
  part: str
  stack: Optional[str] = None
  layer: Optional[int] = None

  @property
  def sublayer(self) -> str:
    return self.part.partition(".")[0]

  @property
  def weight(self) -> str:
    return self.part.partition(".")[2]


def padded_vocab_size(num_tokens: int) -> int:
  """Mesh TF's embedding rows for a vocabulary: a multiple of 128."""
  return -(-num_tokens // 128) * 128


def sublayers(stack: str) -> Tuple[str, ...]:
  """Mesh TF layers of one transformer layer of `stack`, in order."""
  if stack == architecture.ENCODER:
    return (SELF_ATTENTION, FFN)
  return (SELF_ATTENTION, CROSS_ATTENTION, FFN)


def layer_scope(arch: architecture.Architecture, stack: str, layer: int,
                sublayer: str) -> str:
  """`<stack>/block_BBB/layer_LLL` of one sublayer of transformer layer i."""
  period = arch.stack(stack).period()
  names = sublayers(stack)
  position = (layer % period) * len(names) + names.index(
      FFN if sublayer == MOE else sublayer)
  return "%s/block_%03d/layer_%03d" % (stack, layer // period, position)


def params(arch: architecture.Architecture) -> List[Param]:
  """Every trainable Mesh TF variable of the model, in graph order."""
  found = [Param("shared/embedding", (arch.vocab_size, arch.d_model),
                 EMBEDDING)]
  if arch.positions == architecture.ABSOLUTE:
    found.append(Param("shared/positional_embedding",
                       (arch.max_length, arch.d_model), POSITION_EMBEDDING))
  for stack in architecture.STACKS:
    for layer in range(arch.stack(stack).num_layers):
      for sublayer in sublayers(stack):
        if sublayer == FFN and arch.stack(stack).is_sparse(layer):
          sublayer = MOE
        found += _sublayer_params(arch, stack, layer, sublayer)
    found.append(Param(stack + "/rms_norm/scale", (arch.d_model,),
                       FINAL_NORM, stack))
  if not arch.tied_embeddings:
    found.append(Param("decoder/logits/kernel",
                       (arch.d_model, arch.vocab_size), LOGITS))
  return found


def _sublayer_params(arch: architecture.Architecture, stack: str, layer: int,
                     sublayer: str) -> List[Param]:
  """The norm and weights of one sublayer of transformer layer `layer`."""
  d, f, hk = arch.d_model, arch.d_ff, arch.num_heads * arch.d_kv
  scope = layer_scope(arch, stack, layer, sublayer)
  prefix = "%s/%s/" % (scope, _MTF_LAYER[sublayer])
  shapes = []  # (weight, name suffix, shape)
  if sublayer in (SELF_ATTENTION, CROSS_ATTENTION):
    shapes += [(p, p, (hk, d) if p == "o" else (d, hk)) for p in PROJECTIONS]
  elif sublayer == FFN:
    shapes += [(wi, wi + "/kernel", (d, f)) for wi in _input_kernels(arch)]
    shapes.append(("wo", "wo/kernel", (f, d)))
  else:
    e = arch.num_experts
    shapes.append((ROUTER, "switch_gating/kernel", (d, e)))
    shapes += [(wi, wi + "/kernel", (e, d, f)) for wi in _input_kernels(arch)]
    shapes.append(("wo", "wo/kernel", (e, f, d)))
  found = [Param(scope + "/rms_norm/scale", (d,), sublayer + "." + NORM,
                 stack, layer)]
  found += [Param(prefix + suffix, shape, "%s.%s" % (sublayer, weight),
                  stack, layer) for weight, suffix, shape in shapes]
  if (sublayer == SELF_ATTENTION and layer == 0
      and arch.positions == architecture.RELATIVE):
    found.append(Param(prefix + "relative_attention_bias",
                       (arch.num_heads, arch.relative_buckets),
                       RELATIVE_BIAS, stack))
  return found


def _input_kernels(arch: architecture.Architecture) -> Tuple[str, ...]:
  return ("wi_0", "wi_1") if arch.gated else ("wi",)
