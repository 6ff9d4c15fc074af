"""Prints a model's per-token cross-entropy and perplexity on a text file.

Runs the CLI's perplexity eval (switch_mtf_transformer, perplexity_eval.gin)
on the file, read as the own-corpus task's validation split; give the same
model and run gin files the model was trained with. Examples:

  python tools/score_file.py --model_dir=output/demo/switch \\
      --text_file=my_text.txt --gin_file=models/switch_tiny.gin \\
      --gin_file=runs/demo_pretrain.gin
  python tools/score_file.py --model_dir=... --text_file=docs.jsonl.gz \\
      --format=jsonl --text_key=body --gin_file=... --objective=prefix_lm
"""

import argparse
import os
import sys

# Before TensorFlow loads: keep its C++ start-up notices off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
from switch_mtf.cli import events
from switch_mtf.cli import pipeline
from switch_mtf.workflows import score_file


def parse_args(argv):
  defaults = score_file.ScoreRequest(model_dir="", text_file="",
                                     gin_files=())
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  parser.add_argument("--model_dir", required=True,
                      help="the trained model's dir (its checkpoints)")
  parser.add_argument("--text_file", required=True,
                      help="the file to score (a glob works too; .gz is read "
                      "compressed)")
  parser.add_argument("--gin_file", action="append", required=True,
                      help="model and run gin file the model was trained "
                      "with, e.g. models/switch_tiny.gin (repeatable)")
  parser.add_argument("--gin_param", action="append", default=[],
                      help="gin binding, e.g. "
                      "\"task_vocabulary.name='t5'\" (repeatable)")
  parser.add_argument("--objective", default=defaults.objective,
                      choices=sorted(score_file.OBJECTIVES),
                      help="the pretraining objective scored (default: "
                      "%(default)s)")
  parser.add_argument("--format", default=defaults.file_format,
                      choices=["text", "jsonl", "tfrecord"],
                      help="the file's format (default: %(default)s)")
  parser.add_argument("--text_key", default=defaults.text_key,
                      help="jsonl field or tf.train.Example feature holding "
                      "the text (default: %(default)s)")
  parser.add_argument("--documents", default=defaults.documents,
                      choices=["one_per_line", "blank_line_separated"],
                      help="text format: how documents are separated "
                      "(default: %(default)s)")
  parser.add_argument("--checkpoint_step", type=int, default=None,
                      help="checkpoint to score with (default: the latest)")
  parser.add_argument("--batch_size", type=int, default=defaults.batch_size,
                      help="sequences per eval batch (default: %(default)s)")
  parser.add_argument("--seed", type=int, default=defaults.seed,
                      help="seed of the span corruption noise or prefix "
                      "split (default: %(default)s)")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  events.quiet_tensorflow_logs()

  def body() -> int:
    score = score_file.score_file(score_file.ScoreRequest(
        model_dir=args.model_dir, text_file=args.text_file,
        gin_files=tuple(args.gin_file), gin_params=tuple(args.gin_param),
        objective=args.objective, file_format=args.format,
        text_key=args.text_key, documents=args.documents,
        checkpoint_step=args.checkpoint_step, batch_size=args.batch_size,
        seed=args.seed))
    print(score.report())
    return 0

  return pipeline.run_tool("score_file", body)


if __name__ == "__main__":
  sys.exit(main())
