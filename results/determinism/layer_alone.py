"""Saves the Switch layer's train-mode output at the demo's token count.

Run in several processes and compare the .npy files: equal files mean the
layer's kernels are bitwise stable at this size.
  PYTHONPATH=. .venv/bin/python results/determinism/layer_alone.py /tmp/probe/tN.npy
"""
import sys

import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.layer import switch
from switch_mtf.training import random_streams
from tests.layer import layer_harness


class _SeededSession(tf.Session):
  """Fixes the random ops' seeds as the guarded run does, then opens."""

  def __init__(self, *args, **kwargs):
    random_streams.fix_seeds(tf.get_default_graph(), 0)
    super().__init__(*args, **kwargs)


if __name__ == "__main__":
  layer_harness.tf.Session = _SeededSession
  x = np.random.RandomState(0).randn(32, 128, 128).astype(np.float32)
  result = layer_harness.run_layer(
      lambda: switch.Switch(num_experts=8, hidden_size=512,
                            router_dropout_rate=0.0),
      x, mode=layer_harness.TRAIN)
  np.save(sys.argv[1], result.output)
