"""What the speed and claims benchmarks share: results, statistics, grids.

A resumable result store that records each result's command, config grids,
the statistics the reports quote, PNG plots, and the tiny CPU models.

May import: nothing else of switch_mtf.
"""
