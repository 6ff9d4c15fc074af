"""The gin file of a converted model: the model, for `--gin_file`.

The emitted file builds exactly the variables mtf_names.params lists (same
blocks of layers, so the same names), in the checkpoint's dtype, with the
routing the model was released with, and names the model's SentencePiece
vocabulary for our tasks. It binds only the model: compose it with a run
(e.g. runs/cpu_tiny.gin), a recipe (e.g. finetune/constant_lr.gin) and a
task, as any model gin in gin/models/.
"""

from typing import List, Optional, Sequence

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import mtf_names

MODEL_GIN = "model.gin"
_LAYERS = "mesh_tensorflow.transformer.transformer_layers."
_GIN_LAYER = {
    mtf_names.SELF_ATTENTION: "@" + _LAYERS + "SelfAttention",
    mtf_names.CROSS_ATTENTION: "@" + _LAYERS + "EncDecAttention",
    mtf_names.FFN: "@" + _LAYERS + "DenseReluDense",
    mtf_names.MOE: "@switch_mtf.Switch",
}
# Mesh TF's DenseReluDense activation for each of ours; Switch takes ours.
_DENSE_ACTIVATION = {"relu": '"relu"', "gelu": '"gelu"',
                     "geglu": '["gelu", "linear"]'}


def model_gin(arch: architecture.Architecture, master_dtype: str,
              vocabulary_path: Optional[str], header: Sequence[str],
              routing_source: str = "") -> str:
  """The gin text; `header` lines become the leading comment.

  Args:
    arch: the model.
    master_dtype: the checkpoint's dtype ("float32" or "bfloat16"); Mesh TF
      restores variables in the gin's master dtype, so they must agree.
    vocabulary_path: the SentencePiece model our tasks should use, or None
      to leave the task vocabulary alone.
    header: comment lines (where the model came from, how to use it).
    routing_source: where the routing knobs came from, for the comment.
  """
  lines = ["# " + line if line else "#" for line in header]
  lines += ["",
            "import mesh_tensorflow.transformer.transformer",
            "import mesh_tensorflow.transformer.transformer_layers",
            "import mesh_tensorflow.transformer.utils"]
  if arch.is_sparse:
    lines.append("import switch_mtf")
  if vocabulary_path:
    lines.append("import switch_mtf.tasks")
  lines += ["",
            'utils.run.model_type = "bitransformer"',
            "utils.get_variable_dtype.master_dtype = %s" % _quote(
                master_dtype),
            "",
            "d_model = %d" % arch.d_model,
            "d_ff = %d" % arch.d_ff,
            "num_heads = %d" % arch.num_heads,
            "d_kv = %d" % arch.d_kv,
            "dropout_rate = %r" % arch.dropout_rate,
            "transformer.Unitransformer.d_model = %d_model",
            "transformer_layers.DenseReluDense.hidden_size = %d_ff",
            "transformer_layers.DenseReluDense.activation = "
            + _DENSE_ACTIVATION[arch.activation]]
  for layer in ("SelfAttention", "EncDecAttention"):
    lines += ["transformer_layers.%s.num_heads = %%num_heads" % layer,
              "transformer_layers.%s.key_value_size = %%d_kv" % layer]
  lines += [""] + _stack_lines(arch)
  lines += [""] + _position_lines(arch) + [
      "transformer.Unitransformer.shared_embedding_and_softmax_weights = %s"
      % arch.tied_embeddings,
      "transformer.sublayer_rms_norm.epsilon = %r" % arch.norm_epsilon]
  if arch.is_sparse:
    lines += [""] + _switch_lines(arch, routing_source)
  if vocabulary_path:
    lines += ["",
              "# The model's own SentencePiece vocabulary for our tasks.",
              "switch_mtf.tasks.task_vocabulary.name = %s"
              % _quote(vocabulary_path)]
  return "\n".join(lines) + "\n"


def _position_lines(arch: architecture.Architecture) -> List[str]:
  if arch.positions == architecture.ABSOLUTE:
    return ["# Learned absolute positions, shared by both stacks.",
            "transformer.Unitransformer.positional_embedding = True",
            "transformer.Unitransformer.max_length = %d" % arch.max_length]
  return [
      "# T5's relative position bias, one per stack, instead of position",
      "# embeddings.",
      "transformer.Unitransformer.positional_embedding = False",
      'transformer_layers.SelfAttention.relative_attention_type = '
      '"bias_shared"',
      "transformer_layers.SelfAttention.relative_attention_num_buckets = %d"
      % arch.relative_buckets]


def _stack_lines(arch: architecture.Architecture) -> List[str]:
  """make_layer_stack's repeating block and repeat count for each stack."""
  lines = []
  for stack in architecture.STACKS:
    spec = arch.stack(stack)
    period = spec.period()
    lines.append("%s/transformer.make_layer_stack.layers = [" % stack)
    for layer in range(period):
      for sublayer in mtf_names.sublayers(stack):
        if sublayer == mtf_names.FFN and spec.is_sparse(layer):
          sublayer = mtf_names.MOE
        lines.append("    %s," % _GIN_LAYER[sublayer])
    lines += ["]",
              "%s/transformer.make_layer_stack.num_layers = %d"
              % (stack, spec.num_layers // period)]
  return lines


def _switch_lines(arch: architecture.Architecture,
                  routing_source: str) -> List[str]:
  routing = arch.routing
  lines = ["Switch.num_experts = %d" % arch.num_experts,
           "Switch.hidden_size = %d_ff",
           "Switch.activation = %s" % _quote(arch.activation)]
  if routing_source:
    lines.append("# Routing: %s." % routing_source)
  lines += [
      "Switch.group_size = %d" % routing.group_size,
      "Switch.capacity_factor_train = %r" % routing.capacity_factor_train,
      "Switch.capacity_factor_eval = %r" % routing.capacity_factor_eval,
      "Switch.min_expert_capacity = %d" % routing.min_expert_capacity,
      "Switch.router_policy_train = %s" % _quote(
          "input_jitter" if routing.jitter_eps else "argmax")]
  if routing.jitter_eps:
    lines.append("Switch.jitter_eps = %r" % routing.jitter_eps)
  lines += [
      "Switch.loss_coef = %r" % routing.loss_coef,
      "Switch.router_z_loss_coef = %r" % routing.router_z_loss_coef,
      "Switch.router_dtype = %s" % _quote(routing.router_dtype)]
  return lines


def _quote(text: str) -> str:
  return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')
