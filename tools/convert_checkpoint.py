"""Converts released checkpoints to Mesh TF model dirs and back.

Modes:
  hf-to-mtf HF_DIR MODEL_DIR
      A Hugging Face folder (config.json, model.safetensors or
      pytorch_model.bin or their sharded forms, spiece.model) of a
      SwitchTransformers or T5 (v1.0 / v1.1) model -> a Mesh TF model dir:
      model.ckpt-<step> + the `checkpoint` state file, model.gin (pass it
      with --gin_file), spiece.model and conversion.json. No torch needed.
  t5x-to-mtf T5X_DIR MODEL_DIR --vocabulary=SPIECE_MODEL
      A T5X checkpoint dir (checkpoint_<step>/: msgpack + TensorStore, as T5X
      writes it) of a T5 / Switch model, e.g. every switch_classic release
      (base e8-e256, large e128, xxl e128, c e2048) -> a Mesh TF model dir.
      The model is read from the tensors; the routing (capacity factors,
      minimum capacity, group size, no jitter) from the release of that
      shape. Copy gs:// checkpoints to local disk first.
  mtf-to-hf MODEL_DIR HF_DIR
      A Mesh TF model dir (converted, or trained with switch_mtf_transformer)
      -> a Hugging Face folder that from_pretrained loads (config.json,
      safetensors, spiece.model). What transformers 4.31 cannot represent is
      refused with the reason (docs/checkpoints.md).

Example (google/switch-base-8 downloaded to ./switch-base-8):

  python tools/convert_checkpoint.py hf-to-mtf switch-base-8 \\
      output/switch_base_8

then fine-tune with --gin_file=output/switch_base_8/model.gin and
--gin_param="utils.run.init_checkpoint='output/switch_base_8/model.ckpt-0'",
and back:

  python tools/convert_checkpoint.py mtf-to-hf output/finetuned \\
      output/finetuned_hf --gin_file=output/switch_base_8/model.gin

Every check runs before anything is written; a bad input is reported on one
line naming the file, key or tensor, with exit status 2. The output dir
appears only when complete and is never replaced without --overwrite.
docs/checkpoints.md has the name mapping and the cases that are refused.
"""

import argparse
import os
import sys
import time
from typing import List, Optional

# Before TensorFlow loads: keep its C++ start-up notices off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--overwrite", action="store_true",
                      help="replace the output dir if it exists (only once "
                      "the new one is complete)")


def _add_mtf_output_flags(parser: argparse.ArgumentParser) -> None:
  _add_output_flags(parser)
  parser.add_argument("--dtype", choices=("bfloat16", "float32"),
                      default="bfloat16",
                      help="dtype of the Mesh TF checkpoint, bound as the "
                      "gin's master dtype (default: %(default)s, Mesh TF's "
                      "default; float32 keeps float32 weights exact)")
  parser.add_argument("--shard_mb", type=int, default=64,
                      help="checkpoint shard size in MiB; peak memory is "
                      "about two shards or two tensors, whichever are "
                      "larger, over TensorFlow's own (default: %(default)s)")
  parser.add_argument("--vocabulary", default=None,
                      help="SentencePiece model of the model's vocabulary "
                      "(default: the source's spiece.model)")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
  hf = modes.add_parser(
      "hf-to-mtf", help="Hugging Face folder -> Mesh TF model dir",
      description="Hugging Face T5 / SwitchTransformers folder -> Mesh TF "
      "model dir.")
  hf.add_argument("hf_dir", help="the Hugging Face model folder")
  hf.add_argument("model_dir", help="the Mesh TF model dir to create")
  hf.add_argument("--step", type=int, default=0,
                  help="global step stored in the checkpoint; fine-tuning "
                  "counts on from it (default: %(default)s; HF does not "
                  "record the pre-training step)")
  _add_mtf_output_flags(hf)

  t5x = modes.add_parser(
      "t5x-to-mtf", help="T5X checkpoint dir -> Mesh TF model dir",
      description="T5X checkpoint dir (msgpack + TensorStore) -> Mesh TF "
      "model dir.")
  t5x.add_argument("t5x_dir", help="the T5X checkpoint dir, "
                   "checkpoint_<step>/")
  t5x.add_argument("model_dir", help="the Mesh TF model dir to create")
  t5x.add_argument("--step", type=int, default=None,
                   help="global step stored in the checkpoint (default: the "
                   "T5X checkpoint's step, e.g. 500100). Fine-tuning restores "
                   "it and trains until utils.run.train_steps, so pass 0 or "
                   "set train_steps to this step plus the fine-tuning steps "
                   "(docs/checkpoints.md)")
  _add_mtf_output_flags(t5x)

  export = modes.add_parser(
      "mtf-to-hf", help="Mesh TF model dir -> Hugging Face folder",
      description="Mesh TF model dir -> Hugging Face T5 / "
      "SwitchTransformers folder.")
  export.add_argument("model_dir", help="the Mesh TF model dir")
  export.add_argument("hf_dir", help="the Hugging Face folder to create")
  export.add_argument("--gin_file", action="append", default=None,
                      help="the model's gin file, as for the CLI (repeat; "
                      "default: the dir's model.gin, else its "
                      "operative_config.gin)")
  export.add_argument("--gin_param", action="append", default=[],
                      help="gin binding applied after the files (repeat)")
  export.add_argument("--step", type=int, default=None,
                      help="checkpoint step to export (default: the latest)")
  export.add_argument("--expert_capacity", type=int, default=64,
                      help="HF's expert_capacity (tokens per expert per "
                      "sequence) for Switch models; Mesh TF's capacity "
                      "factors over token groups have no HF form (default: "
                      "%(default)s, as google/switch-base-*)")
  export.add_argument("--vocabulary", default=None,
                      help="SentencePiece model to ship as spiece.model "
                      "(default: the dir's spiece.model, else the task "
                      "vocabulary the gin selects)")
  export.add_argument("--shard_mb", type=int, default=2048,
                      help="maximum safetensors file size in MiB "
                      "(default: %(default)s)")
  _add_output_flags(export)
  return parser


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
  return build_parser().parse_args(argv)


def _print_model_dir(result, seconds: float) -> None:
  print("wrote %s (%.1f MB in %.2f s)" % (
      result.model_dir, result.bytes_written / 1e6, seconds))
  print("  checkpoint: %s" % result.checkpoint_prefix)
  print("  gin:        --gin_file=%s" % result.gin_file)


def main(argv: Optional[List[str]] = None) -> int:
  args = parse_args(argv)
  # pylint: disable=g-import-not-at-top
  from switch_mtf.checkpoints import export_hf
  from switch_mtf.checkpoints import import_hf
  from switch_mtf.checkpoints import import_t5x
  from switch_mtf.checkpoints.errors import ConversionError
  # pylint: enable=g-import-not-at-top
  start = time.monotonic()  # the conversion's own time, after the imports
  try:
    if args.mode == "hf-to-mtf":
      result = import_hf.import_hf(
          args.hf_dir, args.model_dir, dtype=args.dtype, step=args.step,
          vocabulary=args.vocabulary, overwrite=args.overwrite,
          shard_bytes=args.shard_mb << 20)
      _print_model_dir(result, time.monotonic() - start)
    elif args.mode == "t5x-to-mtf":
      if not args.vocabulary:
        raise ConversionError(
            "T5X checkpoints hold no vocabulary: pass --vocabulary (the "
            "releases use gs://t5-data/vocabs/cc_all.32000.100extra/"
            "sentencepiece.model).")
      result = import_t5x.import_t5x(
          args.t5x_dir, args.model_dir, args.vocabulary, dtype=args.dtype,
          step=args.step, overwrite=args.overwrite,
          shard_bytes=args.shard_mb << 20)
      _print_model_dir(result, time.monotonic() - start)
    else:
      result = export_hf.export_hf(
          args.model_dir, args.hf_dir, gin_files=args.gin_file,
          gin_params=args.gin_param, step=args.step,
          expert_capacity=args.expert_capacity, vocabulary=args.vocabulary,
          overwrite=args.overwrite, shard_bytes=args.shard_mb << 20)
      print("wrote %s (%.1f MB in %.2f s, %s)" % (
          result.hf_dir, result.bytes_written / 1e6,
          time.monotonic() - start, result.config["architectures"][0]))
  except ConversionError as e:
    print("convert_checkpoint: error: %s" % e, file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
