"""Measures sparse upcycling on the embedded corpus (issue 15).

  python tools/upcycle_experiment.py              # 3 seeds, resumable
  python tools/upcycle_experiment.py --report_only

Per seed: t5_tiny pre-trained --dense_steps, upcycled (tools/upcycle.py),
then --extra_steps more for each of three arms: the dense model continued,
the upcycled model, switch_tiny from scratch (see
switch_mtf/bench/checkpoints/upcycling.py). Every CLI run goes
through switch_mtf_transformer; results/upcycle/runs.json stores each
run's commands, curves, evaluations and provenance (commit, code and gin
hashes, machine, load), summary.md the table and the paired gains. Long:
run it on an idle machine; a finished run is skipped on the next call,
and a stored dense run whose checkpoint is gone (model dirs are scratch)
is trained again for the arms still to run, and so are the arms that
started from its earlier training (a seed's arms share one dense model).
"""

import argparse
import json
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("--seeds", default="0,1,2",
                      help="comma list of seeds (default: %(default)s)")
  parser.add_argument("--dense_steps", type=int, default=1500,
                      help="pre-training steps of the dense model "
                      "(default: %(default)s)")
  parser.add_argument("--extra_steps", type=int, default=1500,
                      help="steps of each arm after that (default: "
                      "%(default)s)")
  parser.add_argument("--num_experts", type=int, default=8,
                      help="experts of the upcycled and scratch Switch "
                      "models (default: %(default)s, switch_tiny's)")
  parser.add_argument("--checkpoint_every", type=int, default=500,
                      help="checkpoint (and evaluation) interval "
                      "(default: %(default)s)")
  parser.add_argument("--perplexity_eval_steps", type=int, default=21,
                      help="validation batches per evaluation (default: "
                      "%(default)s, the claims')")
  parser.add_argument("--work_dir", default="output/upcycle",
                      help="scratch folder for model dirs (default: "
                      "%(default)s)")
  parser.add_argument("--results_dir", default="results/upcycle",
                      help="where runs.json, summary.json and summary.md go "
                      "(default: %(default)s)")
  parser.add_argument("--unguarded", action="store_true",
                      help="train with Mesh TF's plain train_model instead "
                      "of the guarded run (runs/reliable.gin)")
  parser.add_argument("--report_only", action="store_true",
                      help="only re-write summary.md from runs.json")
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  # pylint: disable=g-import-not-at-top
  from switch_mtf.bench.common import store as store_lib
  from switch_mtf.bench.checkpoints import upcycling
  # pylint: enable=g-import-not-at-top
  config = upcycling.Config(
      seeds=tuple(int(s) for s in args.seeds.split(",")),
      dense_steps=args.dense_steps, extra_steps=args.extra_steps,
      num_experts=args.num_experts, checkpoint_every=args.checkpoint_every)
  runs_path = os.path.join(args.results_dir, "runs.json")
  if args.report_only:
    store = store_lib.ResultStore(runs_path)
  else:
    store = upcycling.run(config, os.path.abspath(args.work_dir), runs_path,
                          store_lib.current_command(),
                          guarded=not args.unguarded,
                          perplexity_eval_steps=args.perplexity_eval_steps)
  summary = upcycling.summary(store, config.seeds)
  with open(os.path.join(args.results_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1, sort_keys=True)
    f.write("\n")
  text = upcycling.report(summary, config, store.commands)
  with open(os.path.join(args.results_dir, "summary.md"), "w") as f:
    f.write(text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
