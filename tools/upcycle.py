"""Sparse upcycling: a dense Mesh TF model dir -> a Switch model dir.

  python tools/upcycle.py DENSE_DIR SWITCH_DIR --num_experts=8

Every expert of each chosen FFN (every other layer, 1, 3, 5, ..., as in
Switch-Base; or --sparse_layers=all) starts as a copy of that dense FFN,
each router from the Switch paper's 0.1x initialisation, every other weight
as it was; the global step is kept. SWITCH_DIR gets the checkpoint, its
model.gin, spiece.model and conversion.json. Continue pre-training with

  switch_mtf_transformer --model_dir=NEW_DIR \\
      --module_import=switch_mtf.tasks --gin_file=dataset.gin \\
      --gin_file=SWITCH_DIR/model.gin --gin_file=<the dense recipe> \\
      --gin_file=upcycle/continued_pretraining.gin \\
      --gin_param="utils.run.init_checkpoint='SWITCH_DIR/model.ckpt-STEP'" \\
      --gin_param="utils.run.train_steps=STEP+EXTRA"

Bad input is reported on one line (exit status 2) before anything is
written; tools/upcycle_experiment.py measures what upcycling buys.
"""

import argparse
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("dense_dir", help="the dense Mesh TF model dir")
  parser.add_argument("switch_dir", help="the Switch model dir to create")
  parser.add_argument("--num_experts", type=int, required=True,
                      help="experts per sparse FFN")
  parser.add_argument("--sparse_layers", choices=("every_other", "all"),
                      default="every_other",
                      help="which FFNs become sparse: every_other (layers "
                      "1, 3, ..., as Switch-Base) or all (as Switch-C) "
                      "(default: %(default)s)")
  parser.add_argument("--gin_file", action="append", default=None,
                      help="the dense model's gin file (repeat; default: "
                      "the dir's model.gin, else its operative_config.gin)")
  parser.add_argument("--gin_param", action="append", default=[],
                      help="gin binding applied after the files (repeat)")
  parser.add_argument("--step", type=int, default=None,
                      help="dense checkpoint to start from (default: the "
                      "latest)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the routers' initialisation "
                      "(default: %(default)s)")
  parser.add_argument("--vocabulary", default=None,
                      help="SentencePiece model to ship (default: the dir's "
                      "spiece.model, else the vocabulary the gin trains "
                      "with)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace SWITCH_DIR if it exists (once the new "
                      "one is complete)")
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  # pylint: disable=g-import-not-at-top
  from switch_mtf.checkpoints import upcycle
  from switch_mtf.checkpoints.errors import ConversionError
  # pylint: enable=g-import-not-at-top
  try:
    result = upcycle.upcycle(
        args.dense_dir, args.switch_dir, args.num_experts,
        placement=args.sparse_layers, gin_files=args.gin_file,
        gin_params=args.gin_param, step=args.step, seed=args.seed,
        vocabulary=args.vocabulary, overwrite=args.overwrite)
  except ConversionError as e:
    print("upcycle: error: %s" % e, file=sys.stderr)
    return 2
  print("wrote %s (%.1f MB)" % (result.model_dir, result.bytes_written / 1e6))
  print("  checkpoint: %s" % result.checkpoint_prefix)
  print("  gin:        --gin_file=%s" % result.gin_file)
  return 0


if __name__ == "__main__":
  sys.exit(main())
