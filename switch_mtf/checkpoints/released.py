"""The released Switch Transformer configs (T5X `switch_classic`), by shape.

Checkpoints store weights, not how tokens were routed, so a converted model
gets its routing from the release whose shape it has: flaxformer's
`t5x/configs/moe/models/switch_classic_{base,large,xxl,c}.gin` (T5X docs,
"Converted Mesh Tensorflow checkpoints"), whose checkpoints are
gs://t5-data/pretrained_models/t5x/moe/switch_classic/{base/e8..e256,
large/e128, xxl/e128, c/e2048}. All use top-1 routing without router
jitter, load-balancing loss 0.01 and no z-loss; the min expert capacity is
flaxformer MoeLayer's default 4 unless the gin sets 2. A shape that matches
no release gets our Switch layer's defaults, said so in the emitted gin.
"""

import dataclasses
from typing import Optional, Tuple

from switch_mtf.checkpoints import architecture


@dataclasses.dataclass(frozen=True)
class Release:
  """One released size: its shape and its routing."""
  name: str
  d_model: int
  d_ff: int
  num_heads: int
  d_kv: int
  num_layers: int  # per stack
  every_ffn_sparse: bool  # else every other (layers 1, 3, ...)
  activation: str
  tied_embeddings: bool
  routing: architecture.Routing


def _routing(group_size: int, train: float = 1.25, evaluation: float = 2.0,
             min_capacity: int = 4) -> architecture.Routing:
  return architecture.Routing(
      group_size=group_size, capacity_factor_train=train,
      capacity_factor_eval=evaluation, min_expert_capacity=min_capacity,
      jitter_eps=0.0, loss_coef=0.01, router_z_loss_coef=0.0)


SWITCH_CLASSIC = (
    Release("switch_classic/base", 768, 3072, 12, 64, 12, False, "relu", True,
            _routing(8192)),
    Release("switch_classic/large", 1024, 4096, 16, 64, 24, False, "relu",
            True, _routing(4096)),
    Release("switch_classic/xxl", 4096, 10240, 64, 64, 24, False, "geglu",
            False, _routing(4096, evaluation=4.0, min_capacity=2)),
    Release("switch_classic/c", 2080, 6144, 30, 64, 15, True, "relu", False,
            _routing(2048, train=1.0, min_capacity=2)),
)

# Our Switch layer's defaults, for shapes that match no release.
DEFAULT_ROUTING = architecture.Routing(
    group_size=1024, capacity_factor_train=1.25, capacity_factor_eval=2.0,
    min_expert_capacity=4, jitter_eps=0.0, loss_coef=0.01,
    router_z_loss_coef=0.0)


def sparse_layers(num_layers: int, every_ffn_sparse: bool) -> Tuple[int, ...]:
  """The released placements: every FFN, or the odd layers 1, 3, 5, ..."""
  return tuple(i for i in range(num_layers)
               if every_ffn_sparse or i % 2 == 1)


def match(arch: architecture.Architecture) -> Optional[Release]:
  """The release with `arch`'s shape (any expert count), if there is one."""
  for release in SWITCH_CLASSIC:
    layers = sparse_layers(release.num_layers, release.every_ffn_sparse)
    if ((arch.d_model, arch.d_ff, arch.num_heads, arch.d_kv, arch.activation,
         arch.tied_embeddings) == (release.d_model, release.d_ff,
                                   release.num_heads, release.d_kv,
                                   release.activation,
                                   release.tied_embeddings)
        and all(s.num_layers == release.num_layers and
                s.sparse_layers == layers
                for s in (arch.encoder, arch.decoder))):
      return release
  return None
