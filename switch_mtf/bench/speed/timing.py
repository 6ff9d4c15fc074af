"""Round-robin timing: contenders share the machine's drift and load.

The machine drifts by ~10% between runs and other processes come and go, so
absolute times are unreliable; ratios are not, if every contender is timed
in the same rounds. Each round times a few iterations of every contender in
turn; the median over all rounds is the contender's time (the anchor's
Method A: warm-up, then rounds x iterations). `time_on_idle_machine` also
samples the machine's load meanwhile and retries a measurement that other
processes disturbed.
"""

import dataclasses
import time
from typing import Any, Callable, Dict, List, Mapping, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.bench.common import provenance
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


# Other processes' mean CPU share (of all cores) above which a measurement
# is discarded: 0.05 is a tenth of a core on 2 cores, well above an idle
# machine's background (<0.01) and well below one other busy process.
MAX_OTHER_CPU_SHARE = 0.05
BUSY_RETRIES = 3
BUSY_WAIT_S = 60.0


class BusyMachine(RuntimeError):
  """Other processes used the CPU during every attempt of a measurement."""


def time_on_idle_machine(contenders: Mapping[str, Callable[[], object]],
                         protocol: Protocol,
                         log: Callable[[str], None] = print,
                         max_other_share: float = MAX_OTHER_CPU_SHARE,
                         retries: int = BUSY_RETRIES,
                         wait_s: float = BUSY_WAIT_S
                         ) -> Tuple[Dict[str, Dict[str, float]],
                                    Dict[str, Any]]:
  """`time_round_robin` with the load sampled; (times, load summary).

  A measurement during which other processes used more than
  `max_other_share` of the CPU on average is discarded and, after
  `wait_s`, repeated, up to `retries` more times; then BusyMachine.
  """
  for attempt in range(retries + 1):
    with provenance.LoadMonitor() as monitor:
      times = time_round_robin(contenders, protocol)
    load = monitor.summary()
    if load["other_cpu_share_mean"] <= max_other_share:
      load["attempts"] = attempt + 1
      return times, load
    log("  machine busy: other processes used %.0f%% of the CPU (limit "
        "%.0f%%); measurement discarded%s" % (
            100 * load["other_cpu_share_mean"], 100 * max_other_share,
            ", retrying in %.0f s" % wait_s if attempt < retries else ""))
    if attempt < retries:
      time.sleep(wait_s)
  raise BusyMachine(
      "other processes used %.0f%% of the CPU (limit %.0f%%) in each of %d "
      "attempts; stop them (or pass a higher limit) and rerun: finished "
      "blocks are kept." % (100 * load["other_cpu_share_mean"],
                            100 * max_other_share, retries + 1))


def time_forward(built: layer_graph.BuiltLayer, runs: int) -> float:
  """Median ms of loss-only (forward) runs."""
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    built.forward()
    times.append((time.perf_counter() - start) * 1e3)
  return stats.median(times)


class _Probe:
  """One op in its own graph and session; calling the probe runs it once."""

  def __init__(self, build: Callable[[], tf.Tensor], threads: int):
    self.graph = tf.Graph()
    with self.graph.as_default():
      self._op = build()
      self.session = tf.Session(config=layer_graph.session_config(threads))
      self.session.run(tf.global_variables_initializer())

  def __call__(self) -> None:
    self.session.run(self._op)

  def close(self) -> None:
    self.session.close()


class BandwidthProbe(_Probe):
  """STREAM-style add, c = a + b, over arrays far larger than the caches.

  Counted bytes: a and b read, c written and then read by the reduction
  that keeps TensorFlow from skipping the add (4 x n x 4 bytes per run).
  """

  def __init__(self, n: int = 1 << 25, threads: int = 0):
    self.bytes = 4.0 * n * 4
    self.name = "stream_add_%dM" % (n >> 20)

    def build():
      a = tf.Variable(tf.ones([n], tf.float32))
      b = tf.Variable(tf.ones([n], tf.float32))
      return tf.reduce_sum(a + b)
    super().__init__(build, threads)


class MatmulProbe(_Probe):
  """tf.matmul of [m, k] @ [k, n] on variables: the machine's FLOP/s peak."""

  def __init__(self, m: int, k: int, n: int, threads: int = 0):
    self.flops = 2.0 * m * k * n
    self.name = "matmul_%dx%dx%d" % (m, k, n)

    def build():
      rng = np.random.RandomState(0)
      a = tf.Variable(rng.randn(m, k).astype(np.float32))
      b = tf.Variable(rng.randn(k, n).astype(np.float32))
      return tf.reduce_sum(tf.matmul(a, b))
    super().__init__(build, threads)
