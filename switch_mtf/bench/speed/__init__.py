"""Speed: layers and whole training steps timed side by side in one process.

layer_graph.py builds the contenders (Switch, MoE1D, dense, top-2),
timing.py times them round-robin, layers.py runs the grid, model_step.py and
scaling.py time whole models and compute TPU memory, report.py writes it up.

May import: switch_mtf.layer, switch_mtf.cli, switch_mtf.cluster,
switch_mtf.analysis, switch_mtf.bench.common.
"""
