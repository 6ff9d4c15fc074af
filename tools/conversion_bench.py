"""Benchmarks checkpoint conversion: MB/s and peak RSS, both ways (issue 15).

  python tools/conversion_bench.py                     # switch-base-8 shapes
  python tools/conversion_bench.py --num_experts=8,16,32   # scaling curve

Writes a synthetic float32 Hugging Face folder of switch-base-8's shapes
(about 2.4 GB; --num_experts=16 doubles the experts), converts it with
tools/convert_checkpoint.py hf-to-mtf (bfloat16) and back mtf-to-hf in
child processes (dirty pages synced before each), and records the whole
process's seconds and the conversion's own (as the tool prints them), MB
written, MB/s of each and each child's peak RSS against the targets
(>= 100 MB/s; <= 2x the largest tensor + 1 GB) with provenance in
--results. With several expert counts it fits peak RSS to the largest
tensor and extrapolates it to switch-base-256 (29 GB in bfloat16). Not a
test: run it on an idle machine with free disk under --work_dir (E32: 16 GB).
"""

import argparse
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("--num_experts", default="8",
                      help="comma list of expert counts, one synthetic "
                      "model each (default: %(default)s)")
  parser.add_argument("--size", choices=("switch_base", "tiny"),
                      default="switch_base",
                      help="switch_base: the released base shapes; tiny: a "
                      "few-MB model for a smoke run (default: %(default)s)")
  parser.add_argument("--work_dir", default="output/conversion_bench",
                      help="scratch folder for the synthetic and converted "
                      "models, each deleted once measured (default: "
                      "%(default)s)")
  parser.add_argument("--results",
                      default="results/checkpoints/conversion_bench.json",
                      help="the results file (default: %(default)s)")
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  # pylint: disable=g-import-not-at-top
  from switch_mtf.bench.common import store
  from switch_mtf.bench.checkpoints import conversion_bench
  # pylint: enable=g-import-not-at-top
  results = conversion_bench.run(
      [int(e) for e in args.num_experts.split(",")],
      os.path.abspath(args.work_dir), args.results, store.current_command(),
      size=args.size)
  print("\n".join(conversion_bench.summary_lines(results)))
  print("results: %s" % args.results)
  return 0


if __name__ == "__main__":
  sys.exit(main())
