"""Repeats the Switch layer's forward and backward pass in one process.

Prints how many distinct results 12 repeats of the same session.run gave for
the output and for each gradient (1 everywhere means bitwise stable); the
objective is a random projection of the output plus the aux loss. Jitter is
off (argmax routing), so every repeat computes the same thing.
  PYTHONPATH=. .venv/bin/python results/determinism/layer_grads.py [gather|einsum]
"""
import hashlib
import sys

import mesh_tensorflow as mtf
import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.layer import switch
from switch_mtf.training import random_streams
from tests.layer import layer_harness

REPEATS = 12


class _RepeatingSession(tf.Session):
  """Seeds random ops like the guarded run; repeats the fetch with extras."""

  def __init__(self, *args, **kwargs):
    random_streams.fix_seeds(tf.get_default_graph(), 0)
    super().__init__(*args, **kwargs)

  def run(self, fetches, *args, **kwargs):
    if not (isinstance(fetches, dict) and "extra" in fetches):
      return super().run(fetches, *args, **kwargs)
    digests = {}
    for _ in range(REPEATS):
      out = super().run(fetches, *args, **kwargs)
      for name, value in [("y", out["y"])] + sorted(out["extra"].items()):
        digests.setdefault(name, set()).add(
            hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest())
    for name, seen in digests.items():
      print("%-60s distinct results: %d" % (name, len(seen)))
    return out


def _gradients(graph, y, aux):
  projection = np.random.RandomState(1).randn(
      *[d.size for d in y.shape.dims]).astype(np.float32)
  r = mtf.import_fully_replicated(y.mesh, tf.constant(projection), y.shape)
  objective = mtf.reduce_sum(y * r) + aux
  variables = graph.trainable_variables
  grads = mtf.gradients([objective], [v.outputs[0] for v in variables])
  return {"grad " + v.name: g for v, g in zip(variables, grads)}


if __name__ == "__main__":
  mode = sys.argv[1] if len(sys.argv) > 1 else "gather"
  layer_harness.tf.Session = _RepeatingSession
  x = np.random.RandomState(0).randn(32, 128, 128).astype(np.float32)
  layer_harness.run_layer(
      lambda: switch.Switch(num_experts=8, hidden_size=512,
                            router_dropout_rate=0.0, dispatch_mode=mode,
                            router_policy_train="argmax"),
      x, mode=layer_harness.TRAIN, extra=_gradients)
