"""Round-robin timing: contenders share the machine's drift and load.

The machine drifts by ~10% between runs and other processes come and go, so
absolute times are unreliable; ratios are not, if every contender is timed
in the same rounds. Each round times a few iterations of every contender in
turn; the median over all rounds is the contender's time (the anchor's
Method A: warm-up, then rounds x iterations).
"""

import dataclasses
import time
from typing import Callable, Dict, List, Mapping

import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.bench.common import stats
from switch_mtf.bench.speed import layer_graph


@dataclasses.dataclass(frozen=True)
class Protocol:
  warmup: int = 3
  rounds: int = 6
  iterations: int = 5  # per contender per round
  forward_runs: int = 12  # loss-only runs, after the timed rounds


def time_round_robin(contenders: Mapping[str, Callable[[], object]],
                     protocol: Protocol) -> Dict[str, Dict[str, float]]:
  """Times each callable; returns name -> {median_ms, min_ms, runs}."""
  for fn in contenders.values():
    for _ in range(protocol.warmup):
      fn()
  samples: Dict[str, List[float]] = {name: [] for name in contenders}
  for _ in range(protocol.rounds):
    for name, fn in contenders.items():
      for _ in range(protocol.iterations):
        start = time.perf_counter()
        fn()
        samples[name].append((time.perf_counter() - start) * 1e3)
  return {name: {"median_ms": stats.median(s), "min_ms": min(s),
                 "runs": len(s)} for name, s in samples.items()}


def time_forward(built: layer_graph.BuiltLayer, runs: int) -> float:
  """Median ms of loss-only (forward) runs."""
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    built.forward()
    times.append((time.perf_counter() - start) * 1e3)
  return stats.median(times)


class MatmulProbe:
  """tf.matmul of [m, k] @ [k, n] on variables: the machine's FLOP/s peak."""

  def __init__(self, m: int, k: int, n: int, threads: int = 0):
    self.flops = 2.0 * m * k * n
    self.name = "matmul_%dx%dx%d" % (m, k, n)
    self.graph = tf.Graph()
    with self.graph.as_default():
      rng = np.random.RandomState(0)
      a = tf.Variable(rng.randn(m, k).astype(np.float32))
      b = tf.Variable(rng.randn(k, n).astype(np.float32))
      self._op = tf.reduce_sum(tf.matmul(a, b))
      self.session = tf.Session(config=layer_graph.session_config(threads))
      self.session.run(tf.global_variables_initializer())

  def __call__(self) -> None:
    self.session.run(self._op)

  def close(self) -> None:
    self.session.close()
