"""Hugging Face `config.json` <-> Architecture, refusing what does not map.

Reads and writes the configs of transformers 4.31's T5Config and
SwitchTransformersConfig. What HF keeps and Mesh TF cannot (and the
reverse) is refused with the key named; docs/checkpoints.md lists every
case. HF routes with a fixed per-sequence `expert_capacity` where our Switch
layer uses capacity factors over token groups, so the routing comes from
the released config of the same shape (released.py), or from the
`mesh_tf_routing` entry our export writes, and the emitted gin says which.
"""

import dataclasses
from typing import Any, Dict, Tuple

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import released
from switch_mtf.checkpoints.errors import ConversionError

CONFIG_FILE = "config.json"
# Our export's record of the Mesh TF routing, kept by HF as an extra key.
ROUTING_KEY = "mesh_tf_routing"
# HF feed_forward_proj -> our activation. "gelu" is HF's exact erf GELU,
# which Mesh TF does not have (its gelu is HF's "gelu_new").
_T5_ACTIVATIONS = {"relu": "relu", "gelu_new": "gelu", "gated-gelu": "geglu",
                   "gated-gelu_new": "geglu"}
_HF_ACTIVATIONS = {"relu": "relu", "gelu": "gelu_new", "geglu": "gated-gelu"}
# Switch experts and dense layers are never gated in transformers 4.31: they
# apply the config's dense_act_fn.
_SWITCH_ACTIVATIONS = {"relu": "relu", "gelu_new": "gelu"}
_ARCHITECTURES = {hf_names.T5: "T5ForConditionalGeneration",
                  hf_names.SWITCH: "SwitchTransformersForConditionalGeneration"}


@dataclasses.dataclass(frozen=True)
class HfModel:
  """An HF config read as an Architecture, plus what only HF records."""
  arch: architecture.Architecture
  family: str
  routing_source: str
  sparse_steps: Tuple[int, int]  # encoder, decoder (0 = dense)


def read(config: Dict[str, Any], path: str) -> HfModel:
  """The model a config.json describes, or a ConversionError naming a key."""
  family = config.get("model_type")
  if family not in hf_names.FAMILIES:
    raise ConversionError(
        "%s: model_type=%r; only %s convert." % (
            path, family, " and ".join(repr(f) for f in hf_names.FAMILIES)))

  def get(key, default=None):
    return _get(config, key, default, path)

  if get("is_encoder_decoder", True) is not True:
    raise ConversionError("%s: is_encoder_decoder=%r; only encoder-decoder "
                          "models convert." % (path, config[
                              "is_encoder_decoder"]))
  if get("relative_attention_max_distance", 128) != (
      architecture.RELATIVE_MAX_DISTANCE):
    raise ConversionError(
        "%s: relative_attention_max_distance=%r; Mesh TF hard-codes %d "
        "(transformer_layers._relative_position_bucket)." % (
            path, config["relative_attention_max_distance"],
            architecture.RELATIVE_MAX_DISTANCE))
  num_layers = get("num_layers")
  decoder_layers = get("num_decoder_layers") or num_layers
  common = dict(
      vocab_size=get("vocab_size"), d_model=get("d_model"), d_ff=get("d_ff"),
      num_heads=get("num_heads"), d_kv=get("d_kv"),
      tied_embeddings=bool(get("tie_word_embeddings", True)),
      relative_buckets=get("relative_attention_num_buckets", 32),
      norm_epsilon=float(get("layer_norm_epsilon", 1e-6)),
      dropout_rate=float(get("dropout_rate", 0.1)))
  if family == hf_names.T5:
    activation = _lookup(_T5_ACTIVATIONS, "feed_forward_proj",
                         get("feed_forward_proj", "relu"), path)
    arch = _architecture(path, encoder=architecture.Stack(num_layers),
                         decoder=architecture.Stack(decoder_layers),
                         activation=activation, **common)
    return HfModel(arch, family, "", (0, 0))
  activation = _lookup(_SWITCH_ACTIVATIONS, "dense_act_fn",
                       _switch_dense_act_fn(config), path)
  steps = (_sparse_step(config, "encoder", num_layers, path),
           _sparse_step(config, "decoder", decoder_layers, path))
  if get("router_bias", False):
    raise ConversionError("%s: router_bias=true; Mesh TF's router has no "
                          "bias." % path)
  router_dtype = get("router_dtype", "float32")
  if router_dtype not in ("float32", "bfloat16"):
    raise ConversionError("%s: router_dtype=%r; our Switch router runs in "
                          "float32 or bfloat16." % (path, router_dtype))
  encoder = architecture.Stack(num_layers, hf_sparse_layers(num_layers,
                                                            steps[0]))
  decoder = architecture.Stack(decoder_layers, hf_sparse_layers(
      decoder_layers, steps[1]))
  experts = get("num_experts") if (encoder.sparse_layers or
                                   decoder.sparse_layers) else 0
  shape = _architecture(path, encoder=encoder, decoder=decoder,
                        activation=activation, num_experts=experts,
                        routing=released.DEFAULT_ROUTING if experts else None,
                        **common)
  routing, source = _routing(config, shape, path)
  if ROUTING_KEY not in config:
    routing = dataclasses.replace(
        routing, jitter_eps=float(get("router_jitter_noise", 0.01)),
        loss_coef=float(get("router_aux_loss_coef", 0.001)),
        router_z_loss_coef=float(get("router_z_loss_coef", 0.001)),
        router_dtype=router_dtype)
  arch = dataclasses.replace(shape, routing=routing) if experts else shape
  return HfModel(arch, family, source if experts else "", steps)


def hf_sparse_layers(num_layers: int, step: int) -> Tuple[int, ...]:
  """Sparse layers for a sparse step: i % step == 1, every layer for 1.

  transformers >= 4.37's rule; 4.31 builds no sparse layer for step 1
  (PR #28564), which import_hf reports when a checkpoint shows it.
  """
  if step <= 0:
    return ()
  return tuple(i for i in range(num_layers) if step == 1 or i % step == 1)


def write(arch: architecture.Architecture, dtype: str,
          expert_capacity: int) -> Dict[str, Any]:
  """The config.json of `arch` for transformers 4.31, or a refusal."""
  if arch.positions != architecture.RELATIVE:
    raise ConversionError(
        "the model uses learned absolute positions "
        "(transformer.Unitransformer.positional_embedding=True); HF T5 "
        "models only have T5's relative bias.")
  family = hf_names.SWITCH if arch.is_sparse else hf_names.T5
  config = {
      "architectures": [_ARCHITECTURES[family]],
      "model_type": family,
      "vocab_size": arch.vocab_size,
      "d_model": arch.d_model,
      "d_ff": arch.d_ff,
      "d_kv": arch.d_kv,
      "num_heads": arch.num_heads,
      "num_layers": arch.encoder.num_layers,
      "num_decoder_layers": arch.decoder.num_layers,
      "relative_attention_num_buckets": arch.relative_buckets,
      "relative_attention_max_distance": architecture.RELATIVE_MAX_DISTANCE,
      "dropout_rate": arch.dropout_rate,
      "layer_norm_epsilon": arch.norm_epsilon,
      "tie_word_embeddings": arch.tied_embeddings,
      "is_encoder_decoder": True,
      "pad_token_id": 0,
      "eos_token_id": 1,
      "decoder_start_token_id": 0,  # Mesh TF shifts targets right with 0
      "torch_dtype": dtype,
  }
  if family == hf_names.T5:
    config["feed_forward_proj"] = _HF_ACTIVATIONS[arch.activation]
    return config
  if arch.gated:
    raise ConversionError(
        "the model has gated (GEGLU) FFNs; transformers' "
        "SwitchTransformers builds only ungated experts and dense layers.")
  steps = [_hf_step(arch.stack(s), s) for s in architecture.STACKS]
  routing = arch.routing
  config.update({
      "feed_forward_proj": _HF_ACTIVATIONS[arch.activation],
      "num_experts": arch.num_experts,
      "expert_capacity": expert_capacity,
      "encoder_sparse_step": steps[0],
      "decoder_sparse_step": steps[1],
      "num_sparse_encoder_layers": len(arch.encoder.sparse_layers),
      "num_sparse_decoder_layers": len(arch.decoder.sparse_layers),
      "router_bias": False,
      "router_dtype": routing.router_dtype,
      "router_jitter_noise": routing.jitter_eps,
      "router_aux_loss_coef": routing.loss_coef,
      "router_z_loss_coef": routing.router_z_loss_coef,
      ROUTING_KEY: dataclasses.asdict(routing),
  })
  return config


def _hf_step(stack: architecture.Stack, name: str) -> int:
  """The HF sparse step that yields the stack's sparse layers, or refuses."""
  if not stack.sparse_layers:
    return 0
  if len(stack.sparse_layers) == stack.num_layers:
    raise ConversionError(
        "every %s FFN is sparse (Switch-C style): transformers 4.31 builds no "
        "sparse layer for sparse step 1 (fixed in 4.37, PR #28564)." % name)
  for step in range(2, stack.num_layers + 1):
    if hf_sparse_layers(stack.num_layers, step) == stack.sparse_layers:
      return step
  raise ConversionError(
      "%s sparse layers %s: HF places them at i %% step == 1 only."
      % (name, list(stack.sparse_layers)))


def _switch_dense_act_fn(config) -> str:
  """What SwitchTransformersConfig derives from feed_forward_proj."""
  if "dense_act_fn" in config:
    return config["dense_act_fn"]
  projection = config.get("feed_forward_proj", "relu")
  return "gelu_new" if projection == "gated-gelu" else projection.split(
      "-")[-1]


def _sparse_step(config, stack: str, num_layers: int, path: str) -> int:
  """The config's sparse step, computed as SwitchTransformersConfig does."""
  key = "%s_sparse_step" % stack
  if key in config:
    return int(config[key])
  sparse = int(config.get("num_sparse_%s_layers" % stack, 3))
  if sparse <= 0:
    return num_layers
  if num_layers < sparse:
    raise ConversionError("%s: num_sparse_%s_layers=%d exceeds %d layers."
                          % (path, stack, sparse, num_layers))
  return num_layers // sparse


def _routing(config, shape: architecture.Architecture,
             path: str) -> Tuple[architecture.Routing, str]:
  if ROUTING_KEY in config:
    try:
      return (architecture.Routing(**config[ROUTING_KEY]),
              "the %s entry of %s (written by our export)" % (ROUTING_KEY,
                                                             path))
    except TypeError as e:
      raise ConversionError("%s: %s=%r is malformed (%s)." % (
          path, ROUTING_KEY, config[ROUTING_KEY], e)) from e
  release = released.match(shape)
  if release:
    return release.routing, (
        "capacities and group size of the released %s config; jitter and "
        "loss coefficients from %s" % (release.name, path))
  return released.DEFAULT_ROUTING, (
      "the Switch layer's defaults (no release has this shape); jitter and "
      "loss coefficients from %s" % path)


def _architecture(path: str, **fields) -> architecture.Architecture:
  try:
    return architecture.Architecture(**fields)
  except (ConversionError, TypeError) as e:
    raise ConversionError("%s: %s" % (path, e)) from e


def _get(config, key: str, default, path: str):
  value = config.get(key, default)
  if value is None and default is None and key != "num_decoder_layers":
    raise ConversionError("%s has no %r." % (path, key))
  return value


def _lookup(table, key: str, value, path: str) -> str:
  if value not in table:
    raise ConversionError(
        "%s: %s=%r does not convert; Mesh TF has %s." % (
            path, key, value, ", ".join(repr(k) for k in table)))
  return table[value]
