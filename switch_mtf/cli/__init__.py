"""Running `t5_mesh_transformer`: launcher, gin, checkpoints, progress, phases.

The torch-free launcher, our gin folder and gin parsed as the CLI parses it,
logical CPU devices, the checkpoints of a model dir, event files, progress
read from a CLI log, and phases run resumably through the CLI.

May import: nothing else of switch_mtf.
"""
