"""Benchmarks of switch-mtf (issue 8): layer/model speed and the paper's claims.

`tools/bench.py` (`make bench`, `make bench-quick`) drives these modules:

- speed: forward+backward time of the Switch layer against Mesh TF's MoE1D,
  the FLOP-matched dense FFN and the top-2 MoE, measured side by side in one
  process (layer_graph.py builds, timing.py times, speed.py orchestrates);
- model_step.py: one full training step of whole models (switch_tiny vs
  t5_tiny, and the experts-doubling axis of the paper's Figure 4);
- scaling.py: per-device memory and all-to-all traffic of the paper's models;
- claims*.py: the paper's quality claims at small scale through the real CLI;
- store.py / grid.py / stats.py: resumable result files, config grids and
  the arithmetic the reports quote; report.py / plots.py write Markdown and
  PNGs.

Nothing here runs in the tests except the harness logic (grid, store,
ratios); timings never do.
"""
