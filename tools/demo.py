"""`make demo`: pretrain Switch and dense, fine-tune, evaluate, report.

Interrupt it any time (Ctrl-C, kill) and run the same command again: it
resumes from the last checkpoint and skips what is done. Examples:

  make demo
  make demo DEMO_ARGS="--pretrain_steps=3000 --gin_param=d_model=256"
  .venv/bin/python tools/demo.py --run_dir=output/rte \\
      --finetune_task=local_super_glue_rte
"""

import argparse
import os
import sys

# Before TensorFlow loads: keep its C++ start-up notices off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
from switch_mtf.cli import events
from switch_mtf.cli import gin_paths
from switch_mtf.cli import pipeline
from switch_mtf.workflows import demo


def parse_args(argv):
  defaults = demo.DemoConfig(run_dir=demo.DEFAULT_RUN_DIR)
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("--run_dir", default=defaults.run_dir,
                      help="where all model dirs and the report go "
                      "(default: %(default)s)")
  for name, help_text in (
      ("pretrain_steps", "pretraining steps of each model"),
      ("finetune_steps", "fine-tuning steps of the Switch model"),
      ("checkpoint_every", "pretraining checkpoint interval (steps)"),
      ("finetune_checkpoint_every", "fine-tuning checkpoint interval"),
      ("validation_batches", "batches for the validation loss"),
      ("seed", "data seed, the same for both models")):
    parser.add_argument("--" + name, type=int,
                        default=getattr(defaults, name),
                        help="%s (default: %%(default)s)" % help_text)
  for name, help_text in (
      ("task", "pretraining task or mixture"),
      ("finetune_task", "fine-tuning task (an embedded SuperGLUE task)"),
      ("switch_gin", "Switch model gin file"),
      ("dense_gin", "dense model gin file")):
    parser.add_argument("--" + name, default=getattr(defaults, name),
                        help="%s (default: %%(default)s)" % help_text)
  parser.add_argument("--eval_task", default="",
                      help="task to evaluate (default: --finetune_task)")
  parser.add_argument("--expert_dropout_rate", type=float,
                      default=defaults.expert_dropout_rate,
                      help="dropout inside the experts when fine-tuning "
                      "(default: %(default)s, the paper's)")
  for name, who, example in (
      ("gin_param", "both models", "d_model=256"),
      ("switch_gin_param", "the Switch model", "num_experts=16"),
      ("dense_gin_param", "the dense model", "d_ff=1024"),
      ("finetune_gin_param", "fine-tuning and its eval",
       "learning_rate_schedules.constant_learning_rate.learning_rate=3e-4")):
    parser.add_argument("--" + name, action="append", default=[],
                        help="gin binding for %s, e.g. %s (repeatable)"
                        % (who, example))
  parser.add_argument("--unguarded", action="store_true",
                      help=gin_paths.UNGUARDED_HELP)
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  events.quiet_tensorflow_logs()

  def body() -> int:
    demo.run(demo.DemoConfig(
        run_dir=args.run_dir, pretrain_steps=args.pretrain_steps,
        finetune_steps=args.finetune_steps, task=args.task,
        finetune_task=args.finetune_task, eval_task=args.eval_task,
        switch_gin=args.switch_gin, dense_gin=args.dense_gin,
        gin_params=tuple(args.gin_param),
        switch_gin_params=tuple(args.switch_gin_param),
        dense_gin_params=tuple(args.dense_gin_param),
        finetune_gin_params=tuple(args.finetune_gin_param),
        expert_dropout_rate=args.expert_dropout_rate,
        checkpoint_every=args.checkpoint_every,
        finetune_checkpoint_every=args.finetune_checkpoint_every,
        validation_batches=args.validation_batches, seed=args.seed,
        guarded=not args.unguarded))
    return 0
  return pipeline.run_tool("make demo", body)


if __name__ == "__main__":
  sys.exit(main())
