"""Hugging Face names of each Mesh TF variable, and how the tensors differ.

`T5ForConditionalGeneration` and `SwitchTransformersForConditionalGeneration`
(transformers 4.31) name block i's sublayers `layer.0` (self-attention),
`layer.1` (cross-attention, decoder only) and the last for the FFN: T5's
`DenseReluDense.{wi,wi_0,wi_1,wo}`, Switch's `mlp.{wi,wo}` or, sparse,
`mlp.router.classifier` and `mlp.experts.expert_<j>.{wi,wo}`. torch Linear
weights are [out, in], Mesh TF kernels [in, out]: every kernel is
transposed; the relative bias is [buckets, heads] in HF, [heads, buckets] in
Mesh TF. The embedding is stored once as `shared.weight`; the copies HF
keeps for tied weights (`*.embed_tokens.weight`, a tied `lm_head.weight`)
are aliases that must equal it.
"""

from typing import Dict, List

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import tensor_plan

T5 = "t5"
SWITCH = "switch_transformers"
FAMILIES = (T5, SWITCH)
EMBEDDING = "shared.weight"
LM_HEAD = "lm_head.weight"
_ATTENTION = {mtf_names.SELF_ATTENTION: (0, "SelfAttention"),
              mtf_names.CROSS_ATTENTION: (1, "EncDecAttention")}


def mappings(arch: architecture.Architecture,
             family: str) -> List[tensor_plan.Mapping]:
  """The HF source of every Mesh TF variable of `arch`."""
  return [_mapping(param, arch, family) for param in mtf_names.params(arch)]


def aliases(arch: architecture.Architecture) -> Dict[str, str]:
  """HF's extra copies of tied weights -> the tensor they copy."""
  found = {"encoder.embed_tokens.weight": EMBEDDING,
           "decoder.embed_tokens.weight": EMBEDDING}
  if arch.tied_embeddings:
    found[LM_HEAD] = EMBEDDING
  return found


def _mapping(param: mtf_names.Param, arch: architecture.Architecture,
             family: str) -> tensor_plan.Mapping:
  copy, transpose = tensor_plan.COPY, tensor_plan.TRANSPOSE
  if param.part == mtf_names.EMBEDDING:
    return tensor_plan.Mapping(param, (EMBEDDING,), copy)
  if param.part == mtf_names.LOGITS:
    return tensor_plan.Mapping(param, (LM_HEAD,), transpose)
  if param.part == mtf_names.RELATIVE_BIAS:
    return tensor_plan.Mapping(param, (
        "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        % param.stack,), transpose)
  if param.part == mtf_names.FINAL_NORM:
    return tensor_plan.Mapping(param, (
        "%s.final_layer_norm.weight" % param.stack,), copy)
  if param.part == mtf_names.POSITION_EMBEDDING:
    raise ValueError("HF T5 models have no absolute position table.")
  block = "%s.block.%d.layer." % (param.stack, param.layer)
  sublayer, weight = param.sublayer, param.weight
  if sublayer in _ATTENTION:
    index, module = _ATTENTION[sublayer]
  else:
    index = len(mtf_names.sublayers(param.stack)) - 1
    module = "DenseReluDense" if family == T5 else "mlp"
  prefix = "%s%d." % (block, index)
  if weight == mtf_names.NORM:
    return tensor_plan.Mapping(param, (prefix + "layer_norm.weight",), copy)
  if sublayer != mtf_names.MOE:
    return tensor_plan.Mapping(
        param, ("%s%s.%s.weight" % (prefix, module, weight),), transpose)
  if weight == mtf_names.ROUTER:
    return tensor_plan.Mapping(
        param, (prefix + "mlp.router.classifier.weight",), transpose)
  return tensor_plan.Mapping(param, tuple(
      "%smlp.experts.expert_%d.%s.weight" % (prefix, expert, weight)
      for expert in range(arch.num_experts)), tensor_plan.STACK_TRANSPOSED)
