"""What gin plugs into the CLI's training: guarded runs and distillation.

`reliable_train_model` with its pre-flight checks, verified checkpoints,
non-finite stops and replayed random streams; the distillation teacher.

May import: switch_mtf.layer, switch_mtf.tasks, switch_mtf.cli.
"""
