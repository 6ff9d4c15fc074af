"""Rebuilds the embedded SentencePiece vocabulary from the shipped corpus.

    python tools/build_vocab.py \
        [--corpus=switch_mtf/tasks/data/wiki/train.tsv.gz]

Trains on the train split only (no validation text) and writes
switch_mtf/tasks/data/vocab/wiki_en_spm8k.model, byte-identical to the
shipped file (tests/tasks/test_data_rebuild.py checks this). Options and the reasons for them
are in `switch_mtf.tasks.vocab_builder`.
"""

import os

from absl import app
from absl import flags

from switch_mtf.tasks import paths
from switch_mtf.tasks import vocab_builder
from switch_mtf.tasks import wiki_corpus

_CORPUS = flags.DEFINE_string(
    "corpus", os.path.join(paths.WIKI_DIR, wiki_corpus.TRAIN_FILE),
    "Train split of the cleaned corpus (tools/build_wiki_corpus.py).")
_OUTPUT = flags.DEFINE_string(
    "output", paths.EMBEDDED_VOCAB_PATH, "Where to write the .model file.")
_VOCAB_SIZE = flags.DEFINE_integer(
    "vocab_size", vocab_builder.VOCAB_SIZE,
    "Pieces in the model, without the 100 sentinels seqio adds.")


def main(argv):
  del argv
  path = vocab_builder.build_vocab(_CORPUS.value, _OUTPUT.value,
                                   _VOCAB_SIZE.value)
  print(f"wrote {path} ({os.path.getsize(path):,} bytes)")


if __name__ == "__main__":
  app.run(main)
