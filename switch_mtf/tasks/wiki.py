"""Pretraining on the embedded English Wikipedia sample (offline; the demo).

Same preprocessing as the C4 tasks; only the source differs. Each line of
`data/wiki/{train,validation}.tsv.gz` is one cleaned article (see
wiki_corpus.py); the source turns it into a C4-like `{"text": ...}` document
with paragraphs separated by newlines.
"""

import os

import seqio
import tensorflow.compat.v2 as tf

from switch_mtf.tasks import denoising
from switch_mtf.tasks import paths
from switch_mtf.tasks import registry
from switch_mtf.tasks import vocab
from switch_mtf.tasks import wiki_corpus

SPLIT_FILES = {
    "train": wiki_corpus.TRAIN_FILE,
    "validation": wiki_corpus.VALIDATION_FILE,
}


def corpus_file(split: str, corpus_dir: str = paths.WIKI_DIR) -> str:
  """Path of a split's corpus file, checked to exist and hold an article."""
  if split not in SPLIT_FILES:
    raise ValueError(
        f"Unknown split {split!r} for the Wikipedia tasks: use one of "
        f"{sorted(SPLIT_FILES)}.")
  return wiki_corpus.check_corpus_file(
      os.path.join(corpus_dir, SPLIT_FILES[split]))


def documents(split: str, shuffle_files: bool, seed=None) -> tf.data.Dataset:
  """`{"text": article}` per corpus line, paragraphs joined by newlines."""
  del shuffle_files, seed  # One file per split; seqio shuffles examples.
  return article_documents(corpus_file(split))


def article_documents(path: str) -> tf.data.Dataset:
  """`{"text": article}` per line of a corpus file (see wiki_corpus.py)."""
  lines = tf.data.TextLineDataset(path, compression_type="GZIP")

  def to_document(line):
    # Drop the page id and title fields (kept in the file for attribution).
    text = tf.strings.regex_replace(line, r"^[^\t]*\t[^\t]*\t", "")
    return {"text": tf.strings.regex_replace(text, "\t", "\n")}

  return lines.map(to_document, num_parallel_calls=tf.data.AUTOTUNE)


_SOURCE = seqio.FunctionDataSource(documents, splits=tuple(SPLIT_FILES))

registry.add_task(
    "wiki_span_corruption",
    local=True,
    source=_SOURCE,
    preprocessors=denoising.span_corruption_preprocessors(),
    output_features=vocab.output_features(),
    metric_fns=[])

registry.add_task(
    "wiki_prefix_lm",
    local=True,
    source=_SOURCE,
    preprocessors=denoising.prefix_lm_preprocessors(),
    output_features=vocab.output_features(),
    metric_fns=[])
