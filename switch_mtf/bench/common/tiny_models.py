"""The tiny CPU models both benchmark parts run, and how Switch dispatches.

One definition, so that a speed table's `switch_tiny_E8_gather` is the very
model the claims train.
"""

DENSE_GIN = "models/t5_tiny.gin"
SWITCH_GIN = "models/switch_tiny.gin"
# Switch runs dispatch by index ops: the same routing and outputs as the
# paper's one-hot einsums (tests/layer/test_dispatch.py), at a lower step time
# on CPU (results/speed/summary.md, "Whole training step"). The layer's
# default, "auto", picks the same on CPU; stating it keeps the stored claim
# commands meaning what they meant before "auto" existed.
CPU_DISPATCH = "Switch.dispatch_mode = 'gather'"
