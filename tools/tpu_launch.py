"""Cloud TPU launcher: the `t5_mesh_transformer` commands of a Switch run.

Prints (default) or runs (--run) pretraining, fine-tuning and evaluation,
after checking the layout against the slice: the mesh must have one device
per core, and experts must divide evenly over the mesh dimension the layout
splits them over. Example:

  .venv/bin/python tools/tpu_launch.py --tpu=my-tpu --zone=europe-west4-a \\
    --project=my-project --model_dir=gs://my-bucket/switch_base \\
    --model_gin=models/switch_base.gin --layout_gin=layouts/v3-32_ep.gin \\
    --accelerator_type=v3-32 --mixture=c4_span_corruption
"""

import argparse
import os
import sys

# Before TensorFlow loads: keep its C++ start-up notices off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
from switch_mtf.analysis import layout_check
from switch_mtf.cli import events
from switch_mtf.cli import gin_paths
from switch_mtf.workflows import tpu_commands


def parse_args(argv):
  defaults = tpu_commands.TpuJob
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  for name, help_text in (
      ("tpu", "Cloud TPU name"), ("zone", "its zone, e.g. europe-west4-a"),
      ("project", "GCP project"),
      ("model_dir", "gs:// root; pretrain/ and finetune_<mixture>/ go here"),
      ("model_gin", "model gin, e.g. models/switch_base.gin"),
      ("layout_gin", "mesh layout gin"),
      ("accelerator_type", "slice, e.g. v3-32 (32 cores)"),
      ("mixture", "pretraining task or mixture")):
    parser.add_argument("--" + name, required=True, help=help_text)
  parser.add_argument("--finetune_mixture",
                      default=defaults.finetune_mixture,
                      help="(default: %(default)s)")
  parser.add_argument("--eval_mixture", default="",
                      help="(default: --finetune_mixture)")
  parser.add_argument("--pretrain_steps", type=int,
                      default=defaults.pretrain_steps,
                      help="(default: %(default)s)")
  parser.add_argument("--finetune_steps", type=int,
                      default=defaults.finetune_steps,
                      help="(default: %(default)s)")
  parser.add_argument("--pretrain_gin", action="append", default=[],
                      help="extra gin file for pretraining (repeatable)")
  parser.add_argument("--finetune_gin", action="append", default=[],
                      help="extra gin file for fine-tuning and eval")
  parser.add_argument("--gin_param", action="append", default=[],
                      help="gin binding for every command (repeatable)")
  parser.add_argument("--num_cores", type=int, default=None,
                      help="devices of the slice, if --accelerator_type is "
                      "not a v2/v3 name")
  parser.add_argument("--tfds_data_dir", default="",
                      help="--t5_tfds_data_dir for the CLI")
  parser.add_argument("--executable", default=defaults.executable,
                      help="the CLI to call (default: %(default)s)")
  parser.add_argument("--unguarded", action="store_true",
                      help="pretrain and fine-tune: "
                      + gin_paths.UNGUARDED_HELP)
  parser.add_argument("--run", action="store_true",
                      help="run the commands instead of printing them")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  events.quiet_tensorflow_logs()
  try:
    job = tpu_commands.TpuJob(
        tpu=args.tpu, zone=args.zone, project=args.project,
        model_dir=args.model_dir, model_gin=args.model_gin,
        layout_gin=args.layout_gin, mixture=args.mixture,
        accelerator_type=args.accelerator_type,
        finetune_mixture=args.finetune_mixture,
        eval_mixture=args.eval_mixture, pretrain_steps=args.pretrain_steps,
        finetune_steps=args.finetune_steps,
        pretrain_gins=tuple(args.pretrain_gin),
        finetune_gins=tuple(args.finetune_gin),
        gin_params=tuple(args.gin_param), num_cores=args.num_cores,
        tfds_data_dir=args.tfds_data_dir, executable=args.executable,
        guarded=not args.unguarded)
    layout = tpu_commands.check_layout(job)
  except (layout_check.LayoutError, ValueError, IOError) as error:
    print("tpu_launch: %s" % error, file=sys.stderr)
    return 2
  print("# Layout OK for %s (%d devices): mesh %s, %d expert layer(s)%s.\n"
        % (job.accelerator_type, job.devices, layout.mesh_shape,
           len(layout.expert_layers),
           " with %s experts" % sorted({l.num_experts
                                        for l in layout.expert_layers})
           if layout.expert_layers else ""))
  cmds = tpu_commands.commands(job)
  if args.run:
    return tpu_commands.run_commands(cmds)
  tpu_commands.print_commands(cmds)
  print("# Dry run: nothing was started. Add --run to run these in order.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
