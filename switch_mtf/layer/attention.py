"""Self-attention whose projections are Switch experts (paper Appendix A).

Paper Figure 10: the weights that produce the queries, and the other set
that produces the shared keys and values, become Switch layers. As in Mesh
TF's ExpertsAttention, one Switch routes each token once and every expert
is an FFN (shared hidden layer, `wi`) with two output projections: `q_wo`
for the query and `k_wo` for the key, which is also the value; the output
projection `o` stays dense. The experts are our Switch (any routing, both
dispatch modes, router metrics), configured through gin as a scoped Switch.

Mesh TF's own ExpertsSelfAttention (mesh-tensorflow 0.1.21) returns the
keys computed from the query antecedent with its `length` dimension, not
renamed to the memory length, so every token attends only to itself
(tests/layer/test_attention.py shows it); here the keys get the memory
dimensions of the attention's memory antecedent, so tokens attend across
positions.
"""

from typing import List, Optional

import gin
import mesh_tensorflow as mtf
from mesh_tensorflow.transformer import attention
from mesh_tensorflow.transformer import transformer
from mesh_tensorflow.transformer import transformer_layers

from switch_mtf.layer import switch as switch_lib

QUERY_KERNEL = "q_wo"
KEY_VALUE_KERNEL = "k_wo"
# The flat [heads * d_kv] output of both projections.
PROJECTION_DIM = "heads_d_kv"


@gin.configurable(module="switch_mtf")
class SwitchSelfAttention(transformer_layers.SelfAttention):
  """Multi-head self-attention with Switch experts computing q and k = v."""

  def __init__(self, experts: Optional[switch_lib.Switch] = None,
               **kwargs):
    """Keeps SelfAttention's knobs; the projections are `experts`.

    Args:
      experts: the Switch whose experts compute the queries and the shared
        keys/values (e.g. `SwitchSelfAttention.experts =
        @attention/switch_mtf.Switch()`, with `attention/Switch.*` knobs).
      **kwargs: SelfAttention's arguments; keys and values are always
        shared, and only the default head layout is supported.

    Raises:
      ValueError: without a Switch, or with an unsupported head layout.
    """
    if not isinstance(experts, switch_lib.Switch):
      raise ValueError(
          "SwitchSelfAttention.experts=%r must be a Switch layer; bind e.g. "
          "SwitchSelfAttention.experts = @attention/switch_mtf.Switch()."
          % (experts,))
    if not kwargs.pop("shared_kv", True):
      raise ValueError("SwitchSelfAttention computes one key = value "
                       "projection (paper Figure 10); shared_kv must be True.")
    super().__init__(shared_kv=True, **kwargs)
    for knob, value, default in (
        ("num_memory_heads", self.num_memory_heads, 0),
        ("combine_dims", self.combine_dims, True),
        ("keep_query_heads_dims", self.keep_query_heads_dims, False)):
      if value != default:
        raise ValueError("SwitchSelfAttention.%s=%r is not supported; "
                         "leave it at %r." % (knob, value, default))
    self.experts = experts

  def make_params(self, context: transformer.Context):
    heads = [mtf.Dimension("heads", self.num_heads)]
    return _ExpertProjections(
        self.experts, context,
        mesh=context.mesh,
        query_input_dim=context.model.model_dim,
        memory_input_dim=context.model.model_dim,
        output_dim=context.model.model_dim,
        key_dim=self.kv_dim,
        value_dim=self.kv_dim,
        query_heads_dims=heads,
        memory_heads_dims=heads,
        variable_dtype=context.variable_dtype,
        shared_kv=True,
        ensemble_dim=context.model.ensemble_dim,
        fold_scaling_into_initializer=self.fold_scaling_into_initializer,
        make_attention_vars=False)


class _ExpertProjections(attention.AttentionParams):
  """Attention parameters whose q and kv come from one Switch call."""

  def __init__(self, experts: switch_lib.Switch,
               context: transformer.Context, **kwargs):
    super().__init__(**kwargs)  # creates only the output projection `o`
    self._experts = experts
    self._context = context
    self._query_dims: List[mtf.Dimension] = []
    self._kv = None

  def compute_q(self, query_antecedent: mtf.Tensor) -> mtf.Tensor:
    flat = mtf.Dimension(PROJECTION_DIM, self.q_shape[-1].size)
    q, kv = self._experts.project(
        self._context, query_antecedent,
        [(QUERY_KERNEL, flat), (KEY_VALUE_KERNEL, flat)])
    self._query_dims = query_antecedent.shape.dims[:-1]
    self._kv = mtf.replace_dimensions(kv, flat, self.k_dims)
    # Dense attention folds this scaling into q's initializer; the experts'
    # kernels are initialised like every expert (as in Mesh TF).
    return mtf.replace_dimensions(q, flat, self.q_dims) * (
        self.key_dim.size ** -0.5)

  def compute_kv(self, memory_antecedent: mtf.Tensor) -> mtf.Tensor:
    """The keys of compute_q's tokens, with the memory's dimensions."""
    memory_dims = memory_antecedent.shape.dims[:-1]
    if [d.size for d in memory_dims] != [d.size for d in self._query_dims]:
      raise ValueError(
          "SwitchSelfAttention attends over its own tokens; the memory %s "
          "does not match the queries %s." % (memory_dims, self._query_dims))
    kv = self._kv
    for query_dim, memory_dim in zip(self._query_dims, memory_dims):
      if query_dim != memory_dim:
        kv = mtf.replace_dimensions(kv, query_dim, memory_dim)
    return kv

  def compute_k(self, memory_antecedent: mtf.Tensor) -> mtf.Tensor:
    raise NotImplementedError("SwitchSelfAttention shares keys and values.")

  def compute_v(self, memory_antecedent: mtf.Tensor) -> mtf.Tensor:
    raise NotImplementedError("SwitchSelfAttention shares keys and values.")
