"""`Switch`: the top-1 mixture-of-experts feed-forward layer (issue 3).

A drop-in replacement for Mesh TF's `moe.MoE1D(moe_gating="switch")` in a
layer stack: same routing, capacity, loss and variables (so MoE1D checkpoints,
the format of the official Switch checkpoints, restore into it and back), plus
router metrics on every platform, a one-hot-free dispatch mode and clear
errors. Mesh TF's other gatings of the paper's appendices ("ntlb",
"switch_max", "expert_selection") and its "sample" policy are knobs with the
same semantics and variable names. The pieces live in capacity.py,
router.py (ntlb.py, priority.py, expert_choice.py), dispatch.py, experts.py
and metrics.py; this module wires them to the Transformer's Context.
"""

import contextlib
from typing import Iterator, List, Optional, Sequence, Tuple

import gin
import mesh_tensorflow as mtf
from mesh_tensorflow.transformer import transformer
import tensorflow.compat.v1 as tf

from switch_mtf.layer import capacity
from switch_mtf.layer import dispatch
from switch_mtf.layer import expert_choice
from switch_mtf.layer import experts
from switch_mtf.layer import metrics
from switch_mtf.layer import ntlb
from switch_mtf.layer import router

# Mesh TF's LayerStack opens a variable scope named after the layer's class;
# ours re-enters the sibling scope MoE1D would get, so variable names match.
VARIABLE_SCOPE = "MoE1D"
# The router kernel's scope, as Mesh TF names it for each gating, so that
# MoE1D checkpoints of any of them restore.
ROUTER_SCOPES = {routing: routing + "_gating" for routing in router.ROUTINGS}
DEFAULT_NTLB_TOP_K = 4  # Mesh TF's MoE1D.ntlb_top_k
OUTER_BATCH = "outer_batch"


@gin.configurable(module="switch_mtf")
class Switch(transformer.TransformerLayer):
  """Switch Transformer FFN layer: each token goes to one expert FFN."""

  def __init__(self,
               num_experts: int = 16,
               hidden_size: int = 4096,
               group_size: int = 1024,
               capacity_factor_train: float = 1.25,
               capacity_factor_eval: float = 2.0,
               min_expert_capacity: int = 4,
               loss_coef: float = 0.01,
               router_z_loss_coef: float = 0.0,
               router_policy_train: str = router.INPUT_JITTER,
               router_policy_eval: str = router.ARGMAX,
               jitter_eps: float = 0.01,
               router_dropout_rate: float = 0.1,
               activation: str = "relu",
               expert_dropout_rate: float = 0.0,
               dispatch_mode: str = dispatch.AUTO,
               router_dtype: str = "float32",
               decode_without_drops: bool = True,
               routing: str = router.SWITCH,
               router_temperature: float = 1.0,
               ntlb_top_k: int = DEFAULT_NTLB_TOP_K):
    """Records hyper-parameters; defaults are the paper's / official code's.

    Args:
      num_experts: E, experts per layer.
      hidden_size: FFN width of each expert (`expert_hidden`).
      group_size: maximum tokens per routing group (see capacity.py).
      capacity_factor_train: capacity factor in TRAIN mode.
      capacity_factor_eval: capacity factor in every other mode (eval,
        scoring, the encoder and the decoder's first pass when decoding).
      min_expert_capacity: lower bound on slots per expert per group.
      loss_coef: alpha of the load-balancing loss (paper §2.2).
      router_z_loss_coef: weight of the ST-MoE router z-loss; 0 = off. Mesh
        TF's `MoE1D.z_loss = z` equals `router_z_loss_coef = z * loss_coef`.
      router_policy_train: router exploration in training (paper Table 11):
        "input_jitter" (the paper's), "input_dropout", "argmax" (none) or
        "sample" (draw the expert from softmax(logits / router_temperature);
        the gate stays the softmax probability of the drawn expert).
      router_policy_eval: same choices outside training; input noise only
        ever applies in training, "sample" samples in any mode it is set.
        "ntlb" takes only "input_jitter" and "argmax", "expert_selection"
        all but "sample" (what Mesh TF's gatings apply).
      jitter_eps: eps of the Uniform(1-eps, 1+eps) router-input jitter.
      router_dropout_rate: router-input dropout of "input_dropout".
      activation: "relu", "gelu" or "geglu" (gated GELU).
      expert_dropout_rate: dropout on the experts' hidden activations
        (paper fine-tuning: 0.4).
      dispatch_mode: "auto" (einsum when built for a TPU, else gather),
        "einsum" (one-hot, TPU-friendly) or "gather" (index ops, no
        [G,S,E,C] tensors); the outputs are identical.
      router_dtype: "float32" (selective precision, paper §2.4) or
        "bfloat16" (the router in the activation precision: the unstable
        ablation of the paper's Table 2).
      decode_without_drops: incremental decoding routes one token per
        sequence per step, so a group is the batch's tokens of one step, and
        they tend to pick the same expert. True gives every expert the whole
        group as capacity there, so decoding drops no token and yields what a
        teacher-forced pass would; False applies capacity_factor_eval as Mesh
        TF's MoE1D does (overflow tokens decode from the residual alone).
      routing: which tokens get an expert's slots, as Mesh TF's moe_gating:
        "switch" (the paper: top-1, slots by token order within the group),
        "switch_max" (top-1, each expert keeps its tokens with the highest
        gates: probability-priority dropping), "ntlb" (top-1, then overflow
        tokens rerouted to their next-best experts with free slots, up to
        ntlb_top_k passes; paper Appendix B) or "expert_selection" (each
        expert picks the capacity's worth of tokens it scores highest in
        the group, a softmax over tokens; a token may get several experts
        or none; it sees later tokens of its group, so a decoder using it
        is not causal within a group). The router kernel is named
        "<routing>_gating" like Mesh TF's.
      router_temperature: temperature of the "sample" policy (> 0; Mesh
        TF's switch_temperature); only with a "sample" policy.
      ntlb_top_k: passes of "ntlb" routing, 1 (= "switch") to num_experts
        (Mesh TF's default: 4); only with routing "ntlb".

    Raises:
      ValueError: on any value the layer cannot run with.
    """
    _check_positive_int("num_experts", num_experts)
    _check_positive_int("hidden_size", hidden_size)
    _check_positive_int("group_size", group_size,
                        "the paper's code uses 1024 tokens per group")
    for knob, value in (("capacity_factor_train", capacity_factor_train),
                        ("capacity_factor_eval", capacity_factor_eval)):
      if not value > 0:
        raise ValueError(
            "Switch.%s=%r must be > 0; the paper uses 1.0-1.25 for training "
            "and 2.0 for evaluation." % (knob, value))
    if min_expert_capacity < 0:
      raise ValueError("Switch.min_expert_capacity=%r must be >= 0 (the "
                       "official code uses 4)." % (min_expert_capacity,))
    for knob, value in (("loss_coef", loss_coef),
                        ("router_z_loss_coef", router_z_loss_coef),
                        ("jitter_eps", jitter_eps)):
      if value < 0:
        raise ValueError("Switch.%s=%r must be >= 0." % (knob, value))
    for knob, value in (("router_dropout_rate", router_dropout_rate),
                        ("expert_dropout_rate", expert_dropout_rate)):
      if not 0.0 <= value < 1.0:
        raise ValueError("Switch.%s=%r must be in [0, 1)." % (knob, value))
    self.num_experts = num_experts
    self.hidden_size = hidden_size
    self.group_size = group_size
    self.capacity_factor_train = capacity_factor_train
    self.capacity_factor_eval = capacity_factor_eval
    self.min_expert_capacity = min_expert_capacity
    self.loss_coef = loss_coef
    self.router_z_loss_coef = router_z_loss_coef
    self.routing = router.check_routing(routing)
    self.router_policy_train = router.check_policy(
        router_policy_train, "router_policy_train", routing)
    self.router_policy_eval = router.check_policy(
        router_policy_eval, "router_policy_eval", routing)
    samples = router.SAMPLE in (router_policy_train, router_policy_eval)
    if samples and not router_temperature > 0:
      raise ValueError(
          "Switch.router_temperature=%r must be > 0 for the 'sample' policy "
          "(use router policy 'argmax' for the temperature-0 limit)."
          % (router_temperature,))
    if not samples and router_temperature != 1.0:
      raise ValueError(
          "Switch.router_temperature=%r has no effect: neither router policy "
          "is 'sample'." % (router_temperature,))
    self.router_temperature = router_temperature
    if routing == router.NTLB:
      if (not isinstance(ntlb_top_k, int)
          or not 1 <= ntlb_top_k <= num_experts):
        raise ValueError(
            "Switch.ntlb_top_k=%r must be an integer from 1 to "
            "num_experts=%d (passes of NTLB rerouting; Mesh TF uses 4)."
            % (ntlb_top_k, num_experts))
    elif ntlb_top_k != DEFAULT_NTLB_TOP_K:
      raise ValueError(
          "Switch.ntlb_top_k=%r has no effect with Switch.routing=%r; it "
          "counts the passes of routing 'ntlb'." % (ntlb_top_k, routing))
    self.ntlb_top_k = ntlb_top_k
    self.jitter_eps = jitter_eps
    self.router_dropout_rate = router_dropout_rate
    self.activation = experts.check_activation(activation)
    self.expert_dropout_rate = expert_dropout_rate
    self.dispatch_mode = dispatch.check_mode(dispatch_mode)
    self.router_dtype = router.check_router_dtype(router_dtype)
    if not isinstance(decode_without_drops, bool):
      raise ValueError("Switch.decode_without_drops=%r must be True or False."
                       % (decode_without_drops,))
    self.decode_without_drops = decode_without_drops

  def call(self, context: transformer.Context, x: mtf.Tensor,
           losses=None) -> mtf.Tensor:
    """Returns the layer output, shaped like x; appends the aux loss.

    Overflow and padding tokens get an all-zero output, so the residual
    connection carries them to the next layer unchanged (paper §2.2).
    `losses` is ignored, as in MoE1D: LayerStack never passes it.
    """
    del losses
    return self.project(context, x, [(experts.OUTPUT, x.shape.dims[-1])],
                        sibling_scope=VARIABLE_SCOPE)[0]

  def project(self, context: transformer.Context, x: mtf.Tensor,
              outputs: Sequence[Tuple[str, mtf.Dimension]],
              sibling_scope: Optional[str] = None) -> List[mtf.Tensor]:
    """Routes x once; each expert ends in one output projection per output.

    Args:
      context: the Transformer's Context; the aux loss is appended to its
        losses and the router metrics are written in training.
      x: [batch..., (length,) d_model] tokens.
      outputs: (kernel name, output dimension) per projection, e.g.
        [("wo", d_model)] for the FFN, or Mesh TF's experts-attention pair
        [("q_wo", q), ("k_wo", kv)]; the hidden layer is shared.
      sibling_scope: create the variables in this sibling of the current
        variable scope (call: "MoE1D", for MoE1D's names) instead of in it.

    Returns:
      one tensor per output, x's shape with d_model replaced by its dim.
    """
    if context.model.ensemble_dim:
      raise NotImplementedError(
          "Switch does not support ensembles (Unitransformer.ensemble); "
          "build one model per ensemble member instead.")
    nonpadding = context.nonpadding
    has_length_dim = context.length_dim in x.shape.dims
    x_shape = x.shape
    if not has_length_dim:
      # Incremental decoding: one position per sequence, never padding.
      x = mtf.reshape(x, mtf.Shape(x_shape.dims[:-1] + [
          mtf.Dimension(context.length_dim.name, 1)] + x_shape.dims[-1:]))
      nonpadding = None
    with _variable_scope(sibling_scope) as layer_scope:
      ys, aux_loss = self._moe(context, x, nonpadding, layer_scope,
                               not has_length_dim, outputs)
    if context.losses is not None:
      context.losses.append(aux_loss)
    return [mtf.reshape(y, mtf.Shape(x_shape.dims[:-1] + [dim]))
            for y, (_, dim) in zip(ys, outputs)]

  def _moe(self, context: transformer.Context, x: mtf.Tensor,
           nonpadding, layer_scope: str, incremental: bool,
           outputs: Sequence[Tuple[str, mtf.Dimension]]
           ) -> Tuple[List[mtf.Tensor], mtf.Tensor]:
    """Groups tokens, routes, runs experts, combines; returns (ys, aux)."""
    layout, mesh_shape = context.model.layout, context.model.mesh_shape
    self._check_mesh_split(layout, mesh_shape)
    token_dims, model_dim = x.shape.dims[:-1], x.shape.dims[-1]
    if token_dims[0].name == OUTER_BATCH:
      outer_dim, batch_dim = token_dims[0], token_dims[1]
    else:
      outer_dim, batch_dim = mtf.Dimension(OUTER_BATCH, 1), token_dims[0]
    num_tokens = mtf.Shape(token_dims).size // outer_dim.size
    batch_shards = mtf.tensor_dim_to_mesh_dim_size(layout, mesh_shape,
                                                   batch_dim)
    num_groups, group_size = capacity.split_into_groups(
        num_tokens, self.group_size, batch_shards)
    # Same name as the batch dim: groups are split exactly like the batch.
    groups_dim = mtf.Dimension(batch_dim.name, num_groups)
    group_dim = mtf.Dimension("group", group_size)
    grouped_dims = [outer_dim, groups_dim, group_dim]
    train = context.train
    if incremental and self.decode_without_drops:
      slots = group_size
    else:
      slots = capacity.expert_capacity(
          group_size, self.num_experts,
          self.capacity_factor_train if train else self.capacity_factor_eval,
          self.min_expert_capacity)
    if self.routing == router.EXPERT_SELECTION:
      # An expert cannot pick more tokens than its group has (Mesh TF's
      # top-k would fail there, e.g. when decoding small batches).
      slots = min(slots, group_size)
    capacity_dim = mtf.Dimension("expert_capacity", slots)

    inputs = mtf.reshape(x, mtf.Shape(grouped_dims + [model_dim]))
    real = mtf.ones(x.mesh, mtf.Shape(token_dims), dtype=tf.float32)
    if isinstance(nonpadding, mtf.Tensor):  # else None or 1: no padding
      real *= mtf.to_float(mtf.equal(mtf.to_float(nonpadding), 1.0))
    real = mtf.reshape(real, mtf.Shape(grouped_dims))

    mode = dispatch.resolve_mode(self.dispatch_mode)
    # The gather mode avoids O(S^2) work in positions too.
    cumsum = (router.CUMSUM_SCAN if mode == dispatch.GATHER
              else router.CUMSUM_MATMUL)
    routing = self._route(inputs, real, capacity_dim, train,
                          context.variable_dtype, cumsum)
    dispatcher = dispatch.make_dispatcher(mode, routing, inputs.dtype)
    expert_outputs = experts.run_experts(
        dispatcher.dispatch(inputs), self.hidden_size, self.activation,
        self.expert_dropout_rate, train, context.variable_dtype, outputs)
    ys = [mtf.reshape(dispatcher.combine(expert_output),
                      mtf.Shape(token_dims + [dim]))
          for expert_output, (_, dim) in zip(expert_outputs, outputs)]

    aux_loss = self._aux_loss(routing, context.num_microbatches or 1)
    if train:
      aux_loss = metrics.write_metrics(
          aux_loss, metrics.router_metrics(routing),
          metrics.layer_tag_prefix(layer_scope),
          context.num_microbatches or 1)
    return ys, mtf.cast(aux_loss, x.dtype)

  def _route(self, inputs: mtf.Tensor, real: mtf.Tensor,
             capacity_dim: mtf.Dimension, train: bool,
             variable_dtype: mtf.VariableDType,
             cumsum: str) -> dispatch.AnyRouting:
    """Routes [O, G, S, d_model] tokens with the layer's routing."""
    args = (inputs, real,
            mtf.Dimension("expert_unsplit", self.num_experts), capacity_dim,
            router.RouterSettings(
                policy=(self.router_policy_train if train
                        else self.router_policy_eval),
                train=train,
                variable_dtype=variable_dtype,
                jitter_eps=self.jitter_eps,
                dropout_rate=self.router_dropout_rate,
                compute_z_loss=train and self.router_z_loss_coef > 0,
                router_dtype=self.router_dtype,
                name=ROUTER_SCOPES[self.routing]))
    if self.routing == router.EXPERT_SELECTION:
      return expert_choice.route(*args)
    if self.routing == router.NTLB:
      return ntlb.route(*args, top_k=self.ntlb_top_k, cumsum=cumsum)
    return router.route(*args, cumsum=cumsum,
                        temperature=self.router_temperature,
                        gate_priority=self.routing == router.SWITCH_MAX)

  def _aux_loss(self, routing: dispatch.AnyRouting,
                num_microbatches: int) -> mtf.Tensor:
    """loss_coef * LB (+ z_coef * z), divided over microbatches like MoE1D."""
    loss = routing.load_balancing_loss * self.loss_coef
    if routing.router_z_loss is not None:
      loss += routing.router_z_loss * self.router_z_loss_coef
    return loss / float(num_microbatches)

  def _check_mesh_split(self, layout, mesh_shape) -> None:
    """E and expert_hidden must divide evenly over the mesh axes they use."""
    for knob, dim_name, size in (
        ("num_experts", experts.EXPERTS, self.num_experts),
        ("hidden_size", experts.EXPERT_HIDDEN, self.hidden_size)):
      shards = mtf.tensor_dim_to_mesh_dim_size(
          layout, mesh_shape, mtf.Dimension(dim_name, size))
      if size % shards:
        raise ValueError(
            "Switch.%s=%d is not divisible by the %d-way mesh dimension that "
            "the layout rule for %r splits it over (layout %r, mesh %r); use "
            "a multiple of %d or change the layout rule."
            % (knob, size, shards, dim_name, layout, mesh_shape, shards))


def _check_positive_int(knob: str, value: int, hint: Optional[str] = None):
  if not isinstance(value, int) or value < 1:
    raise ValueError("Switch.%s=%r must be a positive integer%s." % (
        knob, value, "; " + hint if hint else ""))


@contextlib.contextmanager
def _variable_scope(sibling: Optional[str]) -> Iterator[str]:
  """Enters the current variable scope's sibling `sibling`; yields the parent.

  Inside LayerStack the scope is `<layer>/Switch`; MoE1D's variables live in
  `<layer>/MoE1D`. The sibling keeps every setting of the current scope
  (reuse, initializer, dtype, custom getter) but that last name. With no
  sibling the current scope stays.
  """
  current = tf.get_variable_scope()
  parent = current.name.rpartition("/")[0]
  if sibling is None:
    yield parent
    return
  scope = tf.VariableScope(
      reuse=current.reuse,
      name="%s/%s" % (parent, sibling) if parent else sibling,
      initializer=current.initializer,
      regularizer=current.regularizer,
      caching_device=current.caching_device,
      partitioner=current.partitioner,
      custom_getter=current.custom_getter,
      name_scope=current.original_name_scope,
      dtype=current.dtype,
      use_resource=current.use_resource,
      constraint=current.constraint)
  with tf.variable_scope(scope, auxiliary_name_scope=False):
    yield parent
