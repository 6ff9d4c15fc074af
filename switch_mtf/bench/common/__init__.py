"""What the speed and claims benchmarks share: results, statistics, grids.

A resumable result store, each result's provenance (code, gin files,
machine, load), config grids, the statistics the reports quote, PNG plots,
and the tiny CPU models.

May import: switch_mtf.cli.
"""
