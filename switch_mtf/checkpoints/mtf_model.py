"""The Mesh TF model a gin config builds: its variables and its Architecture.

Mesh TF is the reference for what a model dir holds: `variables` builds the
graph exactly as the CLI does (utils.build_model under the parsed gin) and
lists its variables; `architecture` reads the built layers back into an
Architecture, refusing what the Architecture cannot describe. The mapping
tests compare mtf_names.params with the first; export and upcycling start
from the second.
"""

import os
from typing import Dict, List, Sequence, Tuple

import gin
import mesh_tensorflow as mtf
from mesh_tensorflow.transformer import transformer
from mesh_tensorflow.transformer import transformer_layers
from mesh_tensorflow.transformer import utils
import tensorflow.compat.v1 as tf

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import gin_emitter
from switch_mtf.checkpoints.errors import ConversionError
from switch_mtf.cli import gin_config

_OPERATIVE_CONFIG = "operative_config.gin"  # written by the CLI
_DENSE_ACTIVATIONS = {"relu": "relu", "gelu": "gelu",
                      ("gelu", "linear"): "geglu"}
_STANDARD_SUBLAYERS = {
    "_sublayers_initial": ["sublayer_dropout"],
    "_sublayers_per_layer": ["sublayer_rms_norm", "sublayer_call_layer",
                             "sublayer_dropout", "sublayer_residual"],
    "_sublayers_final": ["sublayer_rms_norm", "sublayer_dropout"],
}


def model_gin_files(model_dir: str) -> List[str]:
  """The gin that built a model dir: our model.gin, else the CLI's record."""
  for name in (gin_emitter.MODEL_GIN, _OPERATIVE_CONFIG):
    path = os.path.join(model_dir, name)
    if os.path.isfile(path):
      return [path]
  raise ConversionError(
      "%s has neither %s nor %s; pass the model's gin files with "
      "--gin_file." % (model_dir, gin_emitter.MODEL_GIN, _OPERATIVE_CONFIG))


def parse(gin_files: Sequence[str], gin_params: Sequence[str] = ()) -> None:
  """Parses gin as `switch_mtf_transformer` does (replaces the config).

  Our runs pass `--module_import=switch_mtf.tasks`, so the operative_config.gin
  they leave binds its configurables (`task_vocabulary.name`) without an
  import line; registering them first lets such a model dir be read.
  """
  import switch_mtf.tasks  # pylint: disable=g-import-not-at-top,unused-import
  gin_config.parse(gin_files, gin_params)


def build(vocab_size: int) -> transformer.Bitransformer:
  """The Bitransformer the CLI would build under the parsed gin."""
  model_type = gin_config.run_arg("model_type")
  if model_type != "bitransformer":
    raise ConversionError(
        "utils.run.model_type=%r: only encoder-decoder models "
        "('bitransformer') convert." % (model_type,))
  return utils.build_model(model_type, vocab_size, vocab_size,
                           mtf.convert_to_layout_rules(""),
                           mtf.convert_to_shape(""))


def variables(vocab_size: int) -> Dict[str, Tuple[Tuple[int, ...], str]]:
  """name -> (shape, master dtype name) of every variable of the model."""
  model = build(vocab_size)
  graph = mtf.Graph()
  mesh = mtf.Mesh(graph, "checkpoint_mesh")
  tokens = mtf.zeros(mesh, [mtf.Dimension("batch", 1),
                            mtf.Dimension("length", 4)], dtype=tf.int32)
  with tf.Graph().as_default():
    model.call_simple(inputs=tokens, targets=tokens, compute_loss=True,
                      mode=tf.estimator.ModeKeys.EVAL,
                      variable_dtype=utils.get_variable_dtype())
  return {v.name: (tuple(v.shape.to_integer_list), v.master_dtype.name)
          for v in graph.all_variables}


def master_dtype() -> str:
  """The checkpoint dtype the parsed gin expects (utils.get_variable_dtype)."""
  return utils.get_variable_dtype().master_dtype.name


def architecture_of(model: transformer.Bitransformer,
                    vocab_size: int) -> architecture.Architecture:
  """Reads a built model back into an Architecture, or refuses it."""
  for stack_model in (model.encoder, model.decoder):
    _check_unitransformer(stack_model)
  encoder_layers = _transformer_layers(model.encoder.layer_stack, "encoder")
  decoder_layers = _transformer_layers(model.decoder.layer_stack, "decoder")
  attention = [layer for group in encoder_layers + decoder_layers
               for layer in group[:-1]]
  ffns = [group[-1] for group in encoder_layers + decoder_layers]
  heads = _one_value("attention heads", attention, lambda a: a.num_heads)
  d_kv = _one_value("attention key_value_size", attention,
                    lambda a: a.key_value_size)
  d_ff = _one_value("FFN hidden_size", ffns, lambda f: f.hidden_size)
  activation = _one_value("FFN activation", ffns, _activation)
  switches = [f for f in ffns if not isinstance(
      f, transformer_layers.DenseReluDense)]
  self_attention = [group[0] for group in encoder_layers + decoder_layers]
  relative = _one_value("SelfAttention.relative_attention_type",
                        self_attention, lambda a: a.relative_attention_type)
  absolute = model.encoder.positional_embedding
  if relative not in (None, "bias_shared") or (relative is None) != absolute:
    raise ConversionError(
        "relative_attention_type=%r with positional_embedding=%r: only T5's "
        "shared relative bias ('bias_shared', no position table) or learned "
        "absolute positions (None, a table) convert." % (relative, absolute))
  return architecture.Architecture(
      vocab_size=vocab_size,
      d_model=model.encoder.model_dim.size,
      d_ff=d_ff,
      num_heads=heads,
      d_kv=d_kv,
      encoder=_stack(encoder_layers),
      decoder=_stack(decoder_layers),
      activation=activation,
      tied_embeddings=model.decoder.shared_embedding_and_softmax_weights,
      num_experts=_one_value("Switch.num_experts", switches,
                             lambda s: s.num_experts) if switches else 0,
      routing=_routing(switches) if switches else None,
      positions=(architecture.ABSOLUTE if absolute
                 else architecture.RELATIVE),
      relative_buckets=self_attention[0].relative_attention_num_buckets,
      max_length=model.encoder.max_length_dim.size if absolute else 0,
      norm_epsilon=_bound("transformer.sublayer_rms_norm.epsilon", 1e-6),
      dropout_rate=_one_value("SelfAttention.dropout_rate", attention,
                              lambda a: a.dropout_rate))

def _check_unitransformer(stack_model: transformer.Unitransformer) -> None:
  if stack_model.ensemble_dim or stack_model.sinusoid_positional_embedding:
    raise ConversionError(
        "%s: ensembles and sinusoid position embeddings do not convert."
        % stack_model.name)
  for attribute, functions in _STANDARD_SUBLAYERS.items():
    names = [getattr(f, "__name__", repr(f)) for f in getattr(
        stack_model.layer_stack, attribute) or ()]
    if names != functions:
      raise ConversionError(
          "%s: LayerStack.%s=%s; only Mesh TF's default sublayers (%s) "
          "convert." % (stack_model.name, attribute.lstrip("_"), names,
                        functions))


def _transformer_layers(layer_stack: transformer.LayerStack,
                        stack: str) -> List[Tuple[transformer.TransformerLayer,
                                                  ...]]:
  """Groups a stack's layers into transformer layers (attention..., FFN)."""
  kinds = [transformer_layers.SelfAttention]
  if stack == architecture.DECODER:
    kinds.append(transformer_layers.EncDecAttention)
  width = len(kinds) + 1
  layers = list(layer_stack.layers)
  groups = [tuple(layers[i:i + width]) for i in range(0, len(layers), width)]
  for index, group in enumerate(groups):
    types = [type(layer) for layer in group]
    ffn_ok = len(group) == width and _is_ffn(group[-1])
    if types[:-1] != kinds or not ffn_ok:
      raise ConversionError(
          "%s layer %d is [%s]; a transformer layer must be [%s, FFN] with "
          "FFN DenseReluDense or switch_mtf.Switch." % (
              stack, index, ", ".join(t.__name__ for t in types),
              ", ".join(k.__name__ for k in kinds)))
  return groups


def _is_ffn(layer) -> bool:
  return type(layer).__name__ == "Switch" or type(
      layer) is transformer_layers.DenseReluDense


def _stack(groups) -> architecture.Stack:
  return architecture.Stack(len(groups), tuple(
      i for i, group in enumerate(groups)
      if not isinstance(group[-1], transformer_layers.DenseReluDense)))


def _activation(ffn) -> str:
  if not isinstance(ffn, transformer_layers.DenseReluDense):
    return ffn.activation
  if ffn.use_bias:
    raise ConversionError("DenseReluDense.use_bias=True does not convert "
                          "(T5 and Switch FFNs have no biases).")
  key = ffn.activation if isinstance(ffn.activation, str) else tuple(
      ffn.activation)
  if key not in _DENSE_ACTIVATIONS:
    raise ConversionError(
        "DenseReluDense.activation=%r does not convert; use 'relu', 'gelu' "
        "or ['gelu', 'linear']." % (ffn.activation,))
  return _DENSE_ACTIVATIONS[key]


def _routing(switches) -> architecture.Routing:
  routing = _one_value("Switch.routing", switches, lambda s: s.routing)
  if routing != "switch":
    raise ConversionError(
        "Switch.routing=%r does not convert; the released checkpoints and "
        "transformers' SwitchTransformers route with 'switch' (top-1 by "
        "token order)." % routing)
  for knob in ("router_policy_train", "router_policy_eval"):
    if _one_value("Switch." + knob, switches,
                  lambda s, k=knob: getattr(s, k)) == "sample":
      raise ConversionError(
          "Switch.%s='sample' does not convert; the released checkpoints "
          "and transformers route by argmax." % knob)
  policy = _one_value("Switch.router_policy_train", switches,
                      lambda s: s.router_policy_train)
  if policy == "input_dropout":
    raise ConversionError(
        "Switch.router_policy_train='input_dropout' does not convert; only "
        "'input_jitter' and 'argmax' (no noise) do.")

  def value(name):
    return _one_value("Switch." + name, switches, lambda s: getattr(s, name))

  return architecture.Routing(
      group_size=value("group_size"),
      capacity_factor_train=value("capacity_factor_train"),
      capacity_factor_eval=value("capacity_factor_eval"),
      min_expert_capacity=value("min_expert_capacity"),
      jitter_eps=value("jitter_eps") if policy == "input_jitter" else 0.0,
      loss_coef=value("loss_coef"),
      router_z_loss_coef=value("router_z_loss_coef"),
      router_dtype=value("router_dtype").name)


def _one_value(what: str, items, read):
  values = {repr(read(item)): read(item) for item in items}
  if len(values) != 1:
    raise ConversionError(
        "%s differs between layers (%s); converted models use one value for "
        "all layers." % (what, ", ".join(sorted(values))))
  return next(iter(values.values()))


def _bound(parameter: str, default):
  try:
    return gin.query_parameter(parameter)
  except ValueError:  # Not bound: the function's default.
    return default
