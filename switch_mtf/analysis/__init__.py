"""What a gin config costs and whether its layout fits, without training.

Parameters, FLOPs and per-device memory (model_stats.py); mesh layouts
checked against a TPU slice (layout_check.py).

May import: switch_mtf.layer, switch_mtf.cli.
"""
