"""The model a Mesh TF Context needs to call one FFN layer on its own.

Tests and benchmarks build a Switch, MoE1D or dense layer outside a
Unitransformer; these are the only model attributes such layers read from
their Context (layout and mesh for the split checks, d_model for shapes).
"""

import dataclasses
from typing import List, Optional

import mesh_tensorflow as mtf


@dataclasses.dataclass
class StandInModel:
  """What an FFN layer reads from `context.model`."""
  layout: str
  mesh_shape: str
  model_dim: mtf.Dimension
  ensemble_dim: Optional[mtf.Dimension] = None
  # A list, as Unitransformer's: Mesh TF concatenates it with lists of dims.
  ensemble_dims: List[mtf.Dimension] = dataclasses.field(default_factory=list)
