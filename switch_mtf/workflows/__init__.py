"""Jobs built on the CLI: demos, sweeps, TPU commands, scoring a file,
reports and plots.

Each drives `t5_mesh_transformer` runs (through switch_mtf.cli.pipeline or as
printed commands) and turns their event files into reports and plots.

May import: switch_mtf.layer, switch_mtf.tasks, switch_mtf.cli,
switch_mtf.training, switch_mtf.analysis.
"""
