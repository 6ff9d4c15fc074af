"""Benchmarks: `tools/bench.py` (`make bench`, `make bench-quick`).

speed/ times layers and whole models side by side in one process; claims/
trains the paper's quality claims at small scale through the CLI;
checkpoints/ measures the conversions and sparse upcycling; common/ holds
what they use (result store, statistics, grids, plots); suite.py runs the
parts in order. Timings never run in the tests.

May import: switch_mtf.layer, switch_mtf.tasks, switch_mtf.cli,
switch_mtf.training, switch_mtf.cluster, switch_mtf.analysis,
switch_mtf.workflows, switch_mtf.checkpoints, and its own subpackages.
"""
