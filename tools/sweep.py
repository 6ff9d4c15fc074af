"""Gin sweep: one run per point of a grid over gin bindings, then a table.

Locally (default), points train one after another with the demo's
pretraining setup (a rerun resumes and skips finished points):

  .venv/bin/python tools/sweep.py --sweep_dir=output/sweep --train_steps=300 \\
    --grid "Switch.capacity_factor_train=1.0,1.25" \\
    --grid "Switch.num_experts=4,8"

With --tpu (and --zone, --project, --accelerator_type, --layout_gin) and a
gs:// --sweep_dir, it prints each point's Cloud TPU pretraining command
instead, after checking each point's layout against the slice. --summarize
prints the table from the points' event files (local or GCS) and runs
nothing.
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
from switch_mtf.workflows import sweep
from switch_mtf.workflows import tpu_commands

DEFAULT_GIN_FILES = ("dataset.gin", "models/switch_tiny.gin",
                     "runs/demo_pretrain.gin")


def parse_args(argv):
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("--sweep_dir", required=True,
                      help="one model dir per point goes here")
  parser.add_argument("--grid", action="append", default=[], required=True,
                      help="'binding=v1,v2,...' (repeatable)")
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin files of every point (default: %s)"
                      % ", ".join(DEFAULT_GIN_FILES))
  parser.add_argument("--gin_param", action="append", default=[],
                      help="binding for every point (repeatable)")
  parser.add_argument("--mixture", default="wiki_span_corruption")
  parser.add_argument("--train_steps", type=int, default=300)
  parser.add_argument("--eval_batches", type=int, default=0,
                      help="also measure the validation loss on this many "
                      "batches (local runs)")
  parser.add_argument("--unguarded", action="store_true",
                      help=gin_paths.UNGUARDED_HELP)
  parser.add_argument("--summarize", action="store_true",
                      help="only print the table of existing runs")
  tpu = parser.add_argument_group("Cloud TPU (print commands)")
  for name in ("tpu", "zone", "project", "accelerator_type", "model_gin",
               "layout_gin"):
    tpu.add_argument("--" + name, default="")
  tpu.add_argument("--num_cores", type=int, default=None)
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  events.quiet_tensorflow_logs()

  def body() -> int:
    points = sweep.expand(sweep.parse_grid(args.grid))
    if args.tpu:
      template = tpu_commands.TpuJob(
          tpu=args.tpu, zone=args.zone, project=args.project,
          model_dir=args.sweep_dir, model_gin=args.model_gin,
          layout_gin=args.layout_gin, mixture=args.mixture,
          accelerator_type=args.accelerator_type,
          pretrain_steps=args.train_steps, gin_params=tuple(args.gin_param),
          num_cores=args.num_cores, guarded=not args.unguarded)
      jobs = sweep.tpu_jobs(template, points)
      if args.summarize:
        print(sweep.write_summary(args.sweep_dir, points,
                                  [j.pretrain_dir for j in jobs]))
        return 0
      for point, job in zip(points, jobs):
        command = tpu_commands.commands(job)[0]
        print("# %s: %s\n%s\n" % (point.name, " ".join(point.gin_params),
                                  command.shell()))
      print("# %d points, layouts checked for %s. Then: tools/sweep.py "
            "(same flags) --summarize" % (len(points), args.accelerator_type))
      return 0
    local = sweep.LocalSweep(
        sweep_dir=args.sweep_dir, points=tuple(points),
        gin_files=tuple(args.gin_file or DEFAULT_GIN_FILES),
        mixture=args.mixture, train_steps=args.train_steps,
        gin_params=tuple(args.gin_param), eval_batches=args.eval_batches,
        guarded=not args.unguarded)
    if args.summarize:
      print(sweep.write_summary(args.sweep_dir, points,
                                [local.model_dir(p) for p in points]))
      return 0
    print(local.run())
    print("Summary: %s/%s" % (args.sweep_dir, sweep.SUMMARY_FILE))
    return 0
  return pipeline.run_tool("sweep", body, failure_code=2)


if __name__ == "__main__":
  sys.exit(main())
