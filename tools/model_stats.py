"""Prints what a gin config costs before you book a TPU slice.

  python tools/model_stats.py --gin_file=models/switch_base.gin \
      --gin_file=layouts/v3-32_ep.gin [--gin_param=...] \
      [--mesh_shape=batch:32] [--layout=batch:batch,experts:batch] \
      [--memory_budget_gb=16]

Prints JSON (params, params_per_device, expert_params, flops_per_token,
num_experts, moe_layers, memory per device, ...); see
switch_mtf/analysis/model_stats.py for the definitions. A layout that does not
fit exits with status 2 and says why.
"""

import argparse
import json
import logging
import os
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--gin_file", action="append", required=True,
                      help="gin file, as for t5_mesh_transformer (repeat).")
  parser.add_argument("--gin_param", action="append", default=[],
                      help="gin binding applied after the files (repeat).")
  parser.add_argument("--mesh_shape", default=None,
                      help="overrides utils.run.mesh_shape, e.g. batch:32.")
  parser.add_argument("--layout", default=None,
                      help="overrides utils.run.layout_rules.")
  parser.add_argument("--memory_budget_gb", type=float, default=None,
                      help="fail if weights + Adafactor state per device "
                      "exceed this many GiB (a v3 core has 16).")
  parser.add_argument("--vocab_size", type=int, default=None,
                      help="vocabulary size (default: T5's 32100, which "
                      "Mesh TF pads to 32128).")
  args = parser.parse_args(argv)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  # gin logs an error for every search path a relative gin file is not in.
  logging.getLogger().addFilter(
      lambda record: not record.getMessage().startswith("Path not found"))
  from switch_mtf.analysis import model_stats  # pylint: disable=g-import-not-at-top
  vocab = args.vocab_size or model_stats.DEFAULT_VOCAB_SIZE
  try:
    stats = model_stats.measure(args.gin_file, args.gin_param,
                                mesh_shape=args.mesh_shape,
                                layout_rules=args.layout,
                                memory_budget_gb=args.memory_budget_gb,
                                vocab_size=vocab)
  except model_stats.StatsError as e:
    print("model_stats: error: %s" % e, file=sys.stderr)
    return 2
  print(json.dumps(stats, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
