"""Measurements that start from converted or upcycled checkpoints.

`upcycling.py`: does an upcycled model beat continuing the dense model and
a Switch model from scratch, at equal extra steps (issue 15)? Runs go
through the real CLI with the claims benchmark's launcher, store and
provenance, so a committed result says what produced it.

May import: switch_mtf.checkpoints, switch_mtf.bench.claims,
switch_mtf.bench.common, switch_mtf.cli.
"""
