"""Bytes a training step moves between TensorFlow tasks, from the runtime.

A traced `session.run` (FULL_TRACE) on a cluster returns every task's step
stats; each tensor a device received from another device appears there as a
`RecvTensor` entry whose output is the received tensor and whose label
names it and its two devices ("[12KB] [..Mb/s] edge_N_<op> from <device> to
<device>"). The ones between devices of different tasks went over gRPC.
"""

import collections
import re
from typing import Any, Dict, Iterable

import tensorflow.compat.v1 as tf

from switch_mtf.cluster import spec as spec_lib

_LABEL = re.compile(r"edge_\d+_(?P<tensor>\S+) from (?P<sender>\S+) "
                    r"to (?P<receiver>\S+)$")
# Op-name parts of the MoE layers' tensors (scopes `MoE1D` or `Switch`).
_MOE_SCOPE = re.compile(r"/(MoE1D|Switch)/")


def kind(tensor: str) -> str:
  """'moe' (an MoE layer's activations or their gradients: the all-to-alls),
  'variables' (weights, their gradients' sums over the batch shards and
  optimizer state) or 'other' (data, other activations, the loss)."""
  if "/kernel" in tensor or "adafactor" in tensor:
    return "variables"
  return "moe" if _MOE_SCOPE.search(tensor) else "other"


def cross_task_bytes(step_stats: Any) -> Dict[str, Any]:
  """Bytes received across tasks in one step, by kind and by task pair."""
  by_pair: Dict[str, int] = collections.defaultdict(int)
  by_kind: Dict[str, int] = collections.defaultdict(int)
  tensors = 0
  for entry in _received(step_stats.dev_stats):
    sender = spec_lib.task_of(entry["sender"])
    receiver = spec_lib.task_of(entry["receiver"])
    if sender == receiver:
      continue
    by_pair["%s:%d -> %s:%d" % (sender + receiver)] += entry["bytes"]
    by_kind[kind(entry["tensor"])] += entry["bytes"]
    tensors += 1
  return {"bytes": sum(by_kind.values()),
          "by_kind": {k: by_kind.get(k, 0)
                      for k in ("moe", "variables", "other")},
          "tensors": tensors, "by_task_pair": dict(sorted(by_pair.items()))}


def _received(dev_stats: Iterable[Any]) -> Iterable[Dict[str, Any]]:
  for device in dev_stats:
    for node in device.node_stats:
      if node.node_name != "RecvTensor":
        continue
      match = _LABEL.search(node.timeline_label)
      if not match:
        raise ValueError("unexpected RecvTensor label %r"
                         % node.timeline_label)
      size = sum(o.tensor_description.allocation_description.requested_bytes
                 for o in node.output)
      yield dict(match.groupdict(), bytes=size)


def measure_step(session: tf.Session, fetches: Any) -> Dict[str, Any]:
  """Runs `fetches` once, traced, and counts what crossed tasks."""
  metadata = tf.RunMetadata()
  session.run(fetches,
              options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
              run_metadata=metadata)
  return cross_task_bytes(metadata.step_stats)
