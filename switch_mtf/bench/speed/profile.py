"""Where a layer's training step spends its time, per TensorFlow op.

Runs a built layer's step with a full trace (tf.RunMetadata step stats) a
few times and sums each op's wall time on the CPU device, grouped by op type
and by the Mesh TF operation it was lowered from (the name scope), so the
cost of routing, dispatch, experts and gradients can be told apart.
`profile_on_idle_machine` samples the machine's load meanwhile and takes a
profile again when other processes disturbed it, as the timed blocks do.
"""

import collections
import re
import time
from typing import Any, Callable, Dict, List

import tensorflow.compat.v1 as tf

from switch_mtf.bench.common import provenance
from switch_mtf.bench.speed import layer_graph
from switch_mtf.bench.speed import timing

# Lowered TF op names look like `encoder/layer_000/MoE1D/wi/einsum/...`;
# the gradient graph prefixes `gradients/`-like mtf scopes.
_SCOPE_DEPTH = 5


def profile_step(built: layer_graph.BuiltLayer, runs: int = 5,
                 top: int = 25) -> Dict[str, Any]:
  """Per-op-type and per-scope milliseconds per step, largest first."""
  by_type: Dict[str, float] = collections.defaultdict(float)
  by_scope: Dict[str, float] = collections.defaultdict(float)
  by_op: Dict[str, float] = collections.defaultdict(float)
  total = 0.0
  built.step()  # warm-up outside the trace
  for _ in range(runs):
    metadata = tf.RunMetadata()
    # The same fetches as the timed step (the loss too), so no forward op
    # is pruned from the profile that the timing includes.
    built.session.run(
        [built.train_op, built.loss],
        options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
        run_metadata=metadata)
    for device in metadata.step_stats.dev_stats:
      for node in device.node_stats:
        micros = node.all_end_rel_micros
        if node.node_name in ("_SOURCE", "_SINK") or micros <= 0:
          continue
        op_type = _op_type(node)
        by_type[op_type] += micros
        by_scope[_scope(node.node_name)] += micros
        by_op["%s (%s)" % (node.node_name, op_type)] += micros
        total += micros
  def table(d):
    rows = sorted(d.items(), key=lambda kv: -kv[1])[:top]
    return [[name, round(us / runs / 1e3, 3)] for name, us in rows]
  return {"op_time_ms_per_step": round(total / runs / 1e3, 3),
          "by_op_type": table(by_type), "by_scope": table(by_scope),
          "by_op": table(by_op), "runs": runs}


def profile_on_idle_machine(built: layer_graph.BuiltLayer,
                            log: Callable[[str], None] = print,
                            runs: int = 5, top: int = 25,
                            max_other_share: float = (
                                timing.MAX_OTHER_CPU_SHARE),
                            retries: int = timing.BUSY_RETRIES,
                            wait_s: float = timing.BUSY_WAIT_S
                            ) -> Dict[str, Any]:
  """`profile_step` with the load sampled; its result holds it ("load").

  The speed blocks' guard (timing.time_on_idle_machine): a profile during
  which other processes used more than `max_other_share` of the CPU on
  average is discarded and, after `wait_s`, taken again, up to `retries`
  more times; then timing.BusyMachine.
  """
  for attempt in range(retries + 1):
    with provenance.LoadMonitor() as monitor:
      result = profile_step(built, runs, top)
    load = monitor.summary()
    if load["other_cpu_share_mean"] <= max_other_share:
      load["attempts"] = attempt + 1
      result["load"] = load
      return result
    log("  machine busy: other processes used %.0f%% of the CPU (limit "
        "%.0f%%); profile discarded%s" % (
            100 * load["other_cpu_share_mean"], 100 * max_other_share,
            ", retrying in %.0f s" % wait_s if attempt < retries else ""))
    if attempt < retries:
      time.sleep(wait_s)
  raise timing.BusyMachine(
      "other processes used %.0f%% of the CPU (limit %.0f%%) in each of %d "
      "profiles; stop them (or pass a higher limit) and rerun: finished "
      "profiles are kept." % (100 * load["other_cpu_share_mean"],
                              100 * max_other_share, retries + 1))


def _op_type(node) -> str:
  # timeline_label is "name = Type(inputs)" on CPU.
  match = re.match(r"^[^=]*=\s*([A-Za-z0-9_]+)", node.timeline_label or "")
  return match.group(1) if match else "?"


def _scope(name: str) -> str:
  parts: List[str] = name.split("/")
  return "/".join(parts[:_SCOPE_DEPTH])
