"""A fixed execution order for the races in Mesh TF's training step.

Two parts of the step Mesh TF's `model_fn` builds run in an order left to
thread scheduling, and each makes two identical CPU runs differ:

- the microbatch loop (`serialize_num_microbatches` > 1) is a while loop
  with parallel iterations; a stateful random op in it (router jitter,
  dropout) is one kernel that draws for every iteration, so which iteration
  gets which chunk of the stream depends on which ran first;
- the global step increment is grouped with the weight updates without a
  dependency on them, so the optimizer's reads of the step (Adafactor's
  decay rate, the learning rate schedule) see the step before or after it.

`fix_execution_order` serializes those loops and makes the increment wait
for every read of the step. Both edits change the graph in place and must
be made before the session is created (the executor reads them then);
`FixedExecutionOrderHook` makes them in `begin`.
"""

from typing import Iterable, List, Sequence, Set

from absl import logging
import tensorflow.compat.v1 as tf
from tensorflow.core.framework import attr_value_pb2

from switch_mtf.training import random_streams

_INCREMENT_TYPES = ("AssignAddVariableOp", "AssignAdd")


def while_frames(ops: Iterable[tf.Operation]) -> List[str]:
  """Names of the while loops (frames) the ops run in, sorted."""
  frames = set()
  for op in ops:
    # pylint: disable-next=protected-access
    context = op._get_control_flow_context()
    loop = context.GetWhileContext() if context is not None else None
    if loop is not None:
      frames.add(loop.name)
  return sorted(frames)


def serialize_loops(graph: tf.Graph, frames: Sequence[str]) -> int:
  """Runs the iterations of these while loops one after another.

  With one iteration at a time, iteration i of a loop always draws the i-th
  chunk of a random op's stream. Returns the number of Enter ops changed.
  """
  wanted = set(frames)
  changed = 0
  for op in graph.get_operations():
    if (op.type in ("Enter", "RefEnter")
        and op.get_attr("frame_name").decode("utf-8") in wanted
        and op.get_attr("parallel_iterations") != 1):
      # pylint: disable-next=protected-access
      op._set_attr("parallel_iterations", attr_value_pb2.AttrValue(i=1))
      changed += 1
  return changed


def _descendants(op: tf.Operation) -> Set[tf.Operation]:
  seen, stack = set(), [op]
  while stack:
    current = stack.pop()
    if current in seen:
      continue
    seen.add(current)
    stack.extend(c for t in current.outputs for c in t.consumers())
    # pylint: disable-next=protected-access
    stack.extend(current._control_outputs)
  return seen


def _reads_only(op: tf.Operation) -> bool:
  # ReadVariableOp for a resource variable; Identity, Cast, ... for a ref
  # variable. Not the saver's restore or any other assignment.
  return op.type == "ReadVariableOp" or not op.op_def.is_stateful


def increment_after_reads(graph: tf.Graph) -> int:
  """Makes each global step increment wait for the step's other reads.

  A read that itself depends on the increment (a value logged after the
  update) is left alone, as are reads inside loops. Returns the number of
  reads the increments now wait for.
  """
  step = tf.train.get_global_step(graph)
  if step is None:
    return 0
  handle = step.op
  readers = [c for t in handle.outputs for c in t.consumers()]
  increments = [op for op in readers if op.type in _INCREMENT_TYPES]
  added = 0
  for increment in increments:
    after = _descendants(increment)
    reads = [op for op in readers
             if op not in after and _reads_only(op)
             # pylint: disable-next=protected-access
             and op._get_control_flow_context() is None
             and op not in increment.control_inputs]
    if reads:
      # pylint: disable-next=protected-access
      increment._add_control_inputs(reads)
      added += len(reads)
  return added


def fix_execution_order(graph: tf.Graph) -> None:
  """Serializes loops with per-step random ops; orders the step increment."""
  frames = while_frames(random_streams.per_step_ops(graph))
  if frames:
    serialize_loops(graph, frames)
    logging.info("Iterations of %s run one at a time so that their random "
                 "ops draw in a fixed order.", ", ".join(frames))
  reads = increment_after_reads(graph)
  if reads:
    logging.info("The global step increment waits for its %d reads.", reads)


class FixedExecutionOrderHook(tf.train.SessionRunHook):
  """Applies `fix_execution_order` to the graph before the session exists."""

  def begin(self):
    fix_execution_order(tf.get_default_graph())
