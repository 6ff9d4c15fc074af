"""What a converted model is, independent of any file format.

An `Architecture` holds everything the three formats (Mesh TF, Hugging Face,
T5X) must agree on: sizes, which FFN layers are sparse, the activation,
tied or separate logits, the relative position bias, and (for Switch models)
how tokens are routed. Each format reads itself into one and writes itself
from one, so a conversion is reader -> Architecture -> writer and every
format-specific rule lives in that format's module.
"""

import dataclasses
from typing import Optional, Tuple

from switch_mtf.checkpoints.errors import ConversionError

# FFN activations the Mesh TF layers and our Switch layer compute: "gelu" is
# Mesh TF's tanh approximation (Hugging Face "gelu_new"), "geglu" the gated
# GELU of T5.1.1 (wi_0 through gelu times wi_1).
ACTIVATIONS = ("relu", "gelu", "geglu")
GATED_ACTIVATIONS = ("geglu",)
ENCODER = "encoder"
DECODER = "decoder"
STACKS = (ENCODER, DECODER)
# Mesh TF's relative position buckets grow logarithmically up to this
# distance, hard-coded in transformer_layers._relative_position_bucket.
RELATIVE_MAX_DISTANCE = 128
# Where positions come from: T5's relative attention bias (one per stack,
# shared by its layers), or a learned absolute table shared by both stacks
# (Mesh TF's default, our CPU-sized models); only the first has an HF form.
RELATIVE = "relative"
ABSOLUTE = "absolute"


@dataclasses.dataclass(frozen=True)
class Routing:
  """How a Switch model routes tokens (the `Switch.*` gin knobs)."""
  group_size: int
  capacity_factor_train: float
  capacity_factor_eval: float
  min_expert_capacity: int
  # Router-input jitter eps in training; 0.0 means no router noise.
  jitter_eps: float
  loss_coef: float
  router_z_loss_coef: float
  router_dtype: str = "float32"

  def __post_init__(self):
    _require(self.group_size >= 1, "group_size", self.group_size, ">= 1")
    for name in ("capacity_factor_train", "capacity_factor_eval"):
      _require(getattr(self, name) > 0, name, getattr(self, name), "> 0")
    for name in ("min_expert_capacity", "jitter_eps", "loss_coef",
                 "router_z_loss_coef"):
      _require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
    _require(self.router_dtype in ("float32", "bfloat16"), "router_dtype",
             self.router_dtype, "'float32' or 'bfloat16'")


@dataclasses.dataclass(frozen=True)
class Stack:
  """One stack (encoder or decoder): its layers and which FFNs are sparse."""
  num_layers: int
  sparse_layers: Tuple[int, ...] = ()

  def __post_init__(self):
    _require(self.num_layers >= 1, "num_layers", self.num_layers, ">= 1")
    bad = [i for i in self.sparse_layers if not 0 <= i < self.num_layers]
    _require(not bad, "sparse_layers", self.sparse_layers,
             "indices in [0, %d)" % self.num_layers)
    object.__setattr__(self, "sparse_layers",
                       tuple(sorted(set(self.sparse_layers))))

  def is_sparse(self, layer: int) -> bool:
    return layer in self.sparse_layers

  def period(self) -> int:
    """Layers per Mesh TF block: the shortest repeat of the sparse pattern.

    Mesh TF repeats one block of layers `num_layers` times, so the block is
    the smallest p dividing the layer count with layer i sparse exactly when
    layer i % p is (p = 1 for dense or all-sparse stacks, 2 for every
    other FFN sparse).
    """
    pattern = [self.is_sparse(i) for i in range(self.num_layers)]
    for p in range(1, self.num_layers + 1):
      if self.num_layers % p == 0 and all(
          pattern[i] == pattern[i % p] for i in range(self.num_layers)):
        return p
    raise AssertionError("unreachable: p = num_layers always repeats")


@dataclasses.dataclass(frozen=True)
class Architecture:
  """An encoder-decoder T5 / Switch Transformer, format-free."""
  vocab_size: int
  d_model: int
  d_ff: int
  num_heads: int
  d_kv: int
  encoder: Stack
  decoder: Stack
  activation: str
  tied_embeddings: bool
  num_experts: int = 0
  routing: Optional[Routing] = None
  positions: str = RELATIVE
  relative_buckets: int = 32
  max_length: int = 0  # rows of the absolute position table
  norm_epsilon: float = 1e-6
  dropout_rate: float = 0.1

  def __post_init__(self):
    for name in ("vocab_size", "d_model", "d_ff", "num_heads", "d_kv",
                 "relative_buckets"):
      _require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
    _require(self.activation in ACTIVATIONS, "activation", self.activation,
             "one of %s" % ", ".join(ACTIVATIONS))
    _require(self.positions in (RELATIVE, ABSOLUTE), "positions",
             self.positions, "%r or %r" % (RELATIVE, ABSOLUTE))
    _require((self.max_length >= 1) == (self.positions == ABSOLUTE),
             "max_length", self.max_length,
             ">= 1 with absolute positions, else 0")
    _require(self.norm_epsilon > 0, "norm_epsilon", self.norm_epsilon, "> 0")
    _require(0 <= self.dropout_rate < 1, "dropout_rate", self.dropout_rate,
             "in [0, 1)")
    if self.is_sparse:
      _require(self.num_experts >= 1, "num_experts", self.num_experts,
               ">= 1 when some FFN is sparse")
      _require(self.routing is not None, "routing", self.routing,
               "set when some FFN is sparse")
    else:
      _require(self.num_experts == 0, "num_experts", self.num_experts,
               "0 for a dense model")

  @property
  def is_sparse(self) -> bool:
    return bool(self.encoder.sparse_layers or self.decoder.sparse_layers)

  @property
  def gated(self) -> bool:
    return self.activation in GATED_ACTIVATIONS

  def stack(self, name: str) -> Stack:
    return self.encoder if name == ENCODER else self.decoder


def _require(ok: bool, name: str, value, expected: str) -> None:
  if not ok:
    raise ConversionError("model %s=%r is not representable: expected %s."
                          % (name, value, expected))
