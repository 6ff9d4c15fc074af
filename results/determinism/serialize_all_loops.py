"""Probe: every while loop of the training step runs one iteration at a time.

`FixedExecutionOrderHook` serializes only the loops with per-step random
ops; this serializes all of them, to test whether the loop's parallel
iterations explain a difference. Imported through the CLI:
  EXTRA=--module_import=serialize_all_loops \\
      ./run_recipe.sh recipe_k PYTHONPATH=/work/main/results/determinism
"""

from switch_mtf.training import execution_order

_fix_execution_order = execution_order.fix_execution_order


def _fix_and_serialize_all(graph) -> None:
  _fix_execution_order(graph)
  frames = execution_order.while_frames(graph.get_operations())
  print("serialized", frames, execution_order.serialize_loops(graph, frames),
        flush=True)


execution_order.fix_execution_order = _fix_and_serialize_all
