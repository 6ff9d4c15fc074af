"""Report and plots of any run, from its event files (no training).

  .venv/bin/python tools/router_report.py MODEL_DIR [MODEL_DIR ...] \\
      [--labels a,b] [--output_dir DIR] [--compare SPARSE,DENSE]

MODEL_DIR can be local or gs://. Writes report.md and PNG plots (training
loss vs steps and wall-clock, expert load per Switch layer, tokens dropped,
eval metrics) into --output_dir, by default the first MODEL_DIR.
"""

import argparse
import os
import sys

# Before TensorFlow loads: keep its C++ start-up notices off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
from switch_mtf.cli import events
from switch_mtf.workflows import report
from switch_mtf.workflows import run_data


def parse_args(argv):
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR")
  parser.add_argument("--labels", default="",
                      help="comma-separated names (default: dir names)")
  parser.add_argument("--output_dir", default="",
                      help="default: the first MODEL_DIR")
  parser.add_argument("--compare", default="",
                      help="SPARSE,DENSE labels to compare")
  parser.add_argument("--title", default="Run report")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  events.quiet_tensorflow_logs()
  labels = [l.strip() for l in args.labels.split(",")] if args.labels else []
  if labels and len(labels) != len(args.model_dirs):
    print("router_report: --labels has %d names for %d model dirs."
          % (len(labels), len(args.model_dirs)), file=sys.stderr)
    return 2
  compare = None
  if args.compare:
    sparse, _, dense = args.compare.partition(",")
    compare = report.Comparison(sparse.strip(), dense.strip())
  try:
    runs = [run_data.collect(d, labels[i] if labels else None)
            for i, d in enumerate(args.model_dirs)]
  except FileNotFoundError as error:
    print("router_report: %s" % error, file=sys.stderr)
    return 2
  if compare and not {compare.sparse, compare.dense} <= {r.label
                                                           for r in runs}:
    print("router_report: --compare names %r, but the runs are %s."
          % (args.compare, [r.label for r in runs]), file=sys.stderr)
    return 2
  result = report.write_report(runs, args.output_dir or args.model_dirs[0],
                               args.title, compare=compare)
  print("Report: %s\nPlots: %s" % (result.path, ", ".join(result.plots)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
