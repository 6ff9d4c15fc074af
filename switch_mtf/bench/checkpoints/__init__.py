"""Measurements of released and upcycled checkpoints.

`upcycling.py`: does an upcycled model beat continuing the dense model and
a Switch model from scratch, at equal extra steps (issue 15)? Runs go
through the real CLI with the claims benchmark's launcher, store and
provenance, so a committed result says what produced it.
`conversion_bench.py`: MB/s and peak memory of the conversions, on a
synthetic model of switch-base-8's shapes (not a test; tools/
conversion_bench.py). Kept out of switch_mtf.checkpoints so that a change
to these runners does not mark the conversions' results stale.

May import: switch_mtf.checkpoints, switch_mtf.bench.claims,
switch_mtf.bench.common, switch_mtf.tasks (paths), switch_mtf.cli.
"""
