"""Mesh TF model dirs with random weights, written without training.

The checkpoint holds the variables mtf_names lists for an Architecture
(test_mapping.py proves they are the graph's), model.gin is the emitted gin
and spiece.model our embedded vocabulary: the layout of a converted model
dir, for tests that start from Mesh TF.
"""

import os
import shutil

import numpy as np

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import gin_emitter
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import tensor_source
from tests.checkpoints import hf_fixtures


def write_model_dir(path: str, arch: architecture.Architecture,
                    dtype: str = "float32", step: int = 7,
                    seed: int = 0) -> str:
  """Writes the model dir; returns its model.gin path."""
  os.makedirs(path)
  rng = np.random.RandomState(seed)
  numpy_dtype = tensor_source.NUMPY_DTYPES[dtype]
  mtf_checkpoint.write(path, step, (
      (p.mtf_name, rng.normal(0, 0.1, p.shape).astype(numpy_dtype))
      for p in mtf_names.params(arch)))
  spiece = os.path.join(path, "spiece.model")
  shutil.copy(hf_fixtures.SPIECE, spiece)
  gin_file = os.path.join(path, gin_emitter.MODEL_GIN)
  with open(gin_file, "w") as f:
    f.write(gin_emitter.model_gin(arch, dtype, spiece, ["test model"],
                                  "test routing"))
  return gin_file
