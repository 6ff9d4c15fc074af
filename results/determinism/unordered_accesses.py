"""Probe: reads and writes of one variable that the training step leaves unordered.

Lists, for the graph `FixedExecutionOrderHook` sees, every pair of a write
(Assign*, ResourceApply*, ResourceScatter*) and another access of the same
variable where neither is an ancestor of the other, within the ops the
fetch `group_deps` (Mesh TF's train op) needs. Imported through the CLI:
  EXTRA=--module_import=unordered_accesses STEPS=1 \\
      ./run_recipe.sh probe PYTHONPATH=/work/main/results/determinism
then `grep UNORDERED /tmp/det/probe.log` (2026-12-07: "UNORDERED total 0").
"""

from typing import Callable, Iterable, Set

import tensorflow.compat.v1 as tf

from switch_mtf.training import execution_order

_fix_execution_order = execution_order.fix_execution_order
_WRITES = ("Assign", "ResourceApply", "ResourceScatter")


def _closure(start: tf.Operation,
             step: Callable[[tf.Operation], Iterable[tf.Operation]]
             ) -> Set[tf.Operation]:
  seen, stack = set(), [start]
  while stack:
    op = stack.pop()
    if op not in seen:
      seen.add(op)
      stack.extend(step(op))
  return seen


def _parents(op):
  return [t.op for t in op.inputs] + list(op.control_inputs)


def _children(op):
  # pylint: disable-next=protected-access
  return [c for t in op.outputs for c in t.consumers()] + op._control_outputs


def _report(graph: tf.Graph) -> None:
  _fix_execution_order(graph)
  train_op = graph.get_operation_by_name("group_deps")
  step = _closure(train_op, _parents)
  total = 0
  for handle in step:
    if handle.type not in ("VarHandleOp", "VariableV2"):
      continue
    users = [u for u in _children(handle) if u in step]
    for write in (u for u in users if u.type.startswith(_WRITES)):
      before = _closure(write, lambda o: [p for p in _parents(o) if p in step])
      after = _closure(write, lambda o: [c for c in _children(o) if c in step])
      for other in users:
        if other is not write and other not in before and other not in after:
          total += 1
          print("UNORDERED %s: %s vs %s" % (handle.name, write.name,
                                            other.name), flush=True)
  print("UNORDERED total", total, flush=True)


execution_order.fix_execution_order = _report
