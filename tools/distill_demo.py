"""`make distill-demo`: distil the demo's Switch model into a dense student.

Reuses `make demo`'s run dir: its Switch model is the teacher and its dense
model the baseline; what the demo has not trained yet is trained first.
Prints (and writes to <run_dir>/distill_report.md) the validation loss of
the dense model, the distilled student and the teacher, and the fraction of
the teacher's gain the student keeps. Interrupt it any time and run the same
command again to resume. Examples:

  make distill-demo
  make distill-demo DISTILL_ARGS="--ablations"
  .venv/bin/python tools/distill_demo.py --fraction_soft=0.5 --temperature=2 \
      --run_dir=output/other
"""

import argparse
import os
import sys

# Before TensorFlow loads: keep its C++ start-up notices off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
from switch_mtf.cli import events
from switch_mtf.cli import pipeline
from switch_mtf.workflows import demo
from switch_mtf.workflows import distill_demo


def parse_args(argv):
  defaults = distill_demo.DistillOptions()
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("--run_dir", default=demo.DEFAULT_RUN_DIR,
                      help="the demo's run dir (default: %(default)s, "
                      "`make demo`'s)")
  parser.add_argument("--pretrain_steps", type=int, default=None,
                      help="steps of every model, for a run dir the demo "
                      "has not created yet (default: the demo's)")
  parser.add_argument("--fraction_soft", type=float,
                      default=defaults.fraction_soft,
                      help="weight of the teacher's soft targets "
                      "(default: %(default)s, the paper's)")
  parser.add_argument("--temperature", type=float,
                      default=defaults.temperature,
                      help="softmax temperature of the soft targets "
                      "(default: %(default)s)")
  parser.add_argument("--distill_gin_param", action="append", default=[],
                      help="gin binding for the student-teacher runs, e.g. "
                      "TEACHER_INFERENCE_MODE=False (repeatable)")
  parser.add_argument("--ablations", action="store_true",
                      help="also train the paper's Table 6 ablations: "
                      "distillation without init, init without distillation "
                      "(about 10 more minutes)")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  events.quiet_tensorflow_logs()

  def body() -> int:
    config = distill_demo.load_demo_config(args.run_dir, args.pretrain_steps)
    options = distill_demo.DistillOptions(
        fraction_soft=args.fraction_soft, temperature=args.temperature,
        gin_params=tuple(args.distill_gin_param), ablations=args.ablations)
    distill_demo.run(config, options)
    return 0
  return pipeline.run_tool("make distill-demo", body)


if __name__ == "__main__":
  sys.exit(main())
