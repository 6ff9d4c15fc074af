"""Benchmarks and the paper's claims at small scale (issue 8).

  make bench          # everything, resumable: python tools/bench.py
  make bench-quick    # < 15 min: speed ratios + one seed of the
                      # sample-efficiency curve: python tools/bench.py --quick
  python tools/bench.py --parts=speed,paper      # some parts only
  python tools/bench.py --report_only             # re-write the Markdown

Results (JSON + summary.md + PNGs, each JSON recording the commands that
produced it) go to results/{speed,claims,headline}/ (quick:
results/quick/...). Finished blocks and runs are skipped on the next call;
CLI model directories are scratch under --work_dir. See
switch_mtf/bench/suite.py.

How long: every invocation records its wall-clock in
results/invocations.json; docs/results.md section 6 lists them with the
time the stored runs took, section 5 the headline runs' own training and
evaluation time (measured under the load recorded with each; other work
shared the machine) and the grid's training time at the idle step times.
The headline part is the longest: 12 CLI runs of 3000 steps, planned to
fit the issue's 10 hours of this 2-core machine; its distillation part
(headline_distill) about as long again. The large Wikipedia corpus they
train on is built first if missing.
"""

import argparse
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true",
                      help="the < 15 minute subset (make bench-quick).")
  parser.add_argument("--parts", default="",
                      help="comma list of speed,models,paper,profile,cluster,"
                      "claims,headline,headline_distill (default: all; "
                      "headline and headline_distill take hours: see "
                      "docs/results.md section 5).")
  parser.add_argument("--results_dir", default="results",
                      help="where results/{speed,claims,headline}/ live; "
                      "stored results there are reused (default: results, "
                      "the committed ones).")
  parser.add_argument("--work_dir", default=None,
                      help="scratch folder for CLI model directories "
                      "(default: output/bench).")
  parser.add_argument("--threads", type=int, default=0,
                      help="TF intra/inter-op threads (0 = all cores).")
  parser.add_argument("--report_only", action="store_true",
                      help="only re-write the reports from stored results.")
  parser.add_argument("--runs", default="",
                      help="comma list of claim run names or patterns "
                      "(e.g. 'dense_s0,switch_E8_*'); default all.")
  parser.add_argument("--blocks", default="",
                      help="comma list of speed block names or patterns "
                      "(e.g. 'layers/E8/*,group_size/*'); default all.")
  parser.add_argument("--jobs", type=int, default=1,
                      help="claim runs (CLI processes) at a time; worth it "
                      "with more than 2 cores (docs/results.md).")
  parser.add_argument("--rerun_stale", action="store_true",
                      help="measure again the stored results whose code or "
                      "gin files changed since (default: keep them, marked "
                      "stale in the reports).")
  parser.add_argument("--keep_checkpoints", action="store_true",
                      help="keep CLI model directories after a run.")
  parser.add_argument("--unguarded", action="store_true",
                      help="train the claim runs with Mesh TF's plain "
                      "train_model instead of the guarded run "
                      "(runs/reliable.gin).")
  args = parser.parse_args(argv)

  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.disable_v2_behavior()
  tf.get_logger().setLevel("ERROR")
  from switch_mtf.bench import suite  # pylint: disable=g-import-not-at-top
  from switch_mtf.bench.common import store  # pylint: disable=g-import-not-at-top

  options = suite.Options(
      quick=args.quick, results_dir=args.results_dir,
      work_dir=args.work_dir or suite.DEFAULT_WORK_DIR,
      parts=[p for p in args.parts.split(",") if p], threads=args.threads,
      report_only=args.report_only, keep_checkpoints=args.keep_checkpoints,
      rerun_stale=args.rerun_stale, unguarded=args.unguarded,
      jobs=args.jobs,
      run_filter=[r for r in args.runs.split(",") if r],
      block_filter=[b for b in args.blocks.split(",") if b],
      command=store.current_command(
          ["python", sys.argv[0]] + (sys.argv[1:] if argv is None else argv)))
  for path in suite.run(options, log=lambda m: print(m, flush=True)):
    print("wrote", path)
  return 0


if __name__ == "__main__":
  sys.exit(main())
