"""Reproducible random numbers in a training graph, across restarts.

Two things make a Mesh TF run on CPU irreproducible even with fixed data:

- seeds: variable initializers get no seed (the Estimator sets no graph
  seed), and Mesh TF's placement mesh seeds each dropout/jitter op with
  `hash(str)` of a `random.random()` value, which changes with every process
  (Python salts string hashes);
- streams: a stateful random op (dropout, router jitter) continues its stream
  from one step to the next. After a restart the stream starts over, so the
  steps after a resume would draw the masks of steps 1, 2, ... again.

`fix_seeds` gives every stateful random op of the graph a seed made of the
run's seed and a stable hash of its name. Ops that Mesh TF seeded alike (the
slices of one random tensor that must hold the same values) stay alike.
`replay` advances the per-step ops of a restored run by as many steps as
were already taken, so that step k draws what it would have drawn without the
interruption. `ReproducibleRandomHook` does both at the right moments.
"""

import collections
import zlib
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from absl import logging
import tensorflow.compat.v1 as tf
from tensorflow.core.framework import attr_value_pb2

_SEED_ATTRS = ("seed", "seed2")


def stateful_random_ops(graph: tf.Graph) -> List[tf.Operation]:
  """Ops that draw from their own seeded stream (not tf.data sources)."""
  return [op for op in graph.get_operations()
          if op.op_def.is_stateful
          and all(a in op.node_def.attr for a in _SEED_ATTRS)
          and not op.type.endswith("Dataset")]


def _stable_seed(name: str) -> int:
  # crc32 is stable across processes (unlike hash()); 0 would mean "unseeded".
  return (zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF) or 1


def fix_seeds(graph: tf.Graph, seed: int) -> Dict[str, Tuple[int, int]]:
  """Sets (seed, stable hash) on every stateful random op; returns them.

  Must run before a session first runs the ops (attributes are read when the
  kernel is built). Ops that share an explicit seed pair share the new one,
  keyed by the first name of the group in sorted order.
  """
  groups = collections.defaultdict(list)
  for op in stateful_random_ops(graph):
    old = tuple(op.get_attr(a) for a in _SEED_ATTRS)
    # (0, 0) means "unseeded": each such op is its own stream.
    key = ("unseeded", op.name) if old == (0, 0) else old
    groups[key].append(op)
  new_seeds = {}
  for ops in groups.values():
    seed2 = _stable_seed(min(op.name for op in ops))
    for op in ops:
      # pylint: disable-next=protected-access
      op._set_attr("seed", attr_value_pb2.AttrValue(i=seed))
      # pylint: disable-next=protected-access
      op._set_attr("seed2", attr_value_pb2.AttrValue(i=seed2))
      new_seeds[op.name] = (seed, seed2)
  return new_seeds


def ops_feeding(tensors: Iterable[tf.Tensor],
                candidates: Sequence[tf.Operation]) -> List[tf.Operation]:
  """The candidates that `tensors` depend on (data or control inputs)."""
  wanted = set(candidates)
  seen, stack, found = set(), [t.op for t in tensors], []
  while stack:
    op = stack.pop()
    if op in seen:
      continue
    seen.add(op)
    if op in wanted:
      found.append(op)
    stack.extend(t.op for t in op.inputs)
    stack.extend(op.control_inputs)
  return sorted(found, key=lambda op: op.name)


def per_step_ops(graph: tf.Graph) -> List[tf.Operation]:
  """The stateful random ops the graph's losses draw from at every step."""
  return ops_feeding(graph.get_collection(tf.GraphKeys.LOSSES),
                     stateful_random_ops(graph))


def in_loop(op: tf.Operation) -> bool:
  # pylint: disable-next=protected-access
  return op._get_control_flow_context() is not None


def replay(session: tf.Session, per_step_ops: Sequence[tf.Operation],
           steps: int) -> None:
  """Runs each op `steps` times, advancing its stream as `steps` steps did."""
  for _ in range(steps):
    session.run(list(per_step_ops))


class ReproducibleRandomHook(tf.train.SessionRunHook):
  """Fixes seeds at graph build; replays streams after a restore."""

  def __init__(self, seed: int, replay_from: Optional[int] = None):
    """`replay_from`: None for a fresh run; when resuming, the global step
    the run started training from (0, or the step of the checkpoint it was
    initialised from): the steps since then are replayed."""
    self._seed = seed
    self._replay_from = replay_from
    self._per_step_ops = []
    self._replayable = True

  def begin(self):
    graph = tf.get_default_graph()
    fix_seeds(graph, self._seed)
    self._per_step_ops = per_step_ops(graph)
    looped = [op.name for op in self._per_step_ops if in_loop(op)]
    if looped:
      # Ops inside the microbatch loop run several times per step and cannot
      # be fetched on their own.
      self._replayable = False
      logging.warning(
          "%d random ops run inside a loop (microbatching, e.g. %s): a "
          "resumed run draws fresh dropout/jitter streams instead of "
          "continuing them, so it is reproducible but not bitwise equal to "
          "an uninterrupted run.", len(looped), looped[0])
    self._global_step = tf.train.get_global_step()

  def after_create_session(self, session, coord):
    del coord
    if self._replay_from is None or not self._replayable:
      return
    steps = int(session.run(self._global_step)) - self._replay_from
    if steps > 0 and self._per_step_ops:
      logging.info("Replaying %d steps of %d random streams so that the "
                   "resumed run draws what an uninterrupted one would.",
                   steps, len(self._per_step_ops))
      replay(session, self._per_step_ops, steps)
