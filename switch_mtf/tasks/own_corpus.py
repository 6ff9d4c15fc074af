"""Pretraining and evaluation on the user's own corpus, configured by gin.

`own_corpus_span_corruption` and `own_corpus_prefix_lm` preprocess exactly
as the C4 tasks do (denoising.py); their source is whatever the gin binding
`own_corpus` (own_corpus_config.py) describes: plain text, jsonl, TFRecord
of tf.train.Example, or a TFDS dataset, with validation files (or a TFDS
split) or a held-out fraction of the training documents. Every source
yields C4-like `{"text": ...}` documents.
"""

import random
from typing import Iterator, List, Optional

import seqio
import tensorflow.compat.v2 as tf

from switch_mtf.tasks import corpus_files
from switch_mtf.tasks import denoising
from switch_mtf.tasks import own_corpus_check
from switch_mtf.tasks import own_corpus_config as config_lib
from switch_mtf.tasks import registry
from switch_mtf.tasks import vocab

SPAN_CORRUPTION_TASK = "own_corpus_span_corruption"
PREFIX_LM_TASK = "own_corpus_prefix_lm"


def _file_texts(files: List[str],
                config: config_lib.CorpusConfig) -> Iterator[str]:
  for path in files:
    found = False
    for _, text in corpus_files.documents(path, config):
      found = True
      yield text
    if not found:
      raise ValueError("%s has no documents; fill it or leave it out of the "
                       "own_corpus glob." % path)


def _file_dataset(config: config_lib.CorpusConfig, files: List[str]
                  ) -> tf.data.Dataset:
  """The files' texts, in the order of `files`."""
  if config.format == "tfrecord":
    feature = {config.text_key: tf.io.FixedLenFeature([], tf.string)}
    records = tf.data.Dataset.from_tensor_slices(
        (files, [corpus_files.tfrecord_compression(f) for f in files]))
    records = records.flat_map(
        lambda path, compression: tf.data.TFRecordDataset(
            path, compression_type=compression))
    return records.map(
        lambda r: tf.io.parse_single_example(r, feature)[config.text_key],
        num_parallel_calls=tf.data.AUTOTUNE)
  return tf.data.Dataset.from_generator(
      lambda: _file_texts(files, config),
      output_signature=tf.TensorSpec(shape=(), dtype=tf.string))


def _tfds_dataset(config: config_lib.CorpusConfig, split: str,
                  shuffle_files: bool, seed: Optional[int]) -> tf.data.Dataset:
  source = seqio.TfdsDataSource(
      tfds_name=config.tfds_name, tfds_data_dir=config.tfds_data_dir,
      splits={split: config.tfds_split(split)})
  examples = source.get_dataset(split, shuffle=shuffle_files, seed=seed)
  return examples.map(lambda ex: ex[config.text_key])


def is_held_out(text: tf.Tensor, fraction: float) -> tf.Tensor:
  """Whether a document belongs to the held-out validation fraction."""
  bucket = tf.strings.to_hash_bucket_fast(text, config_lib.HASH_BUCKETS)
  return tf.less(bucket, config_lib.held_out_threshold(fraction))


def documents(split: str, shuffle_files: bool,
              seed: Optional[int] = None) -> tf.data.Dataset:
  """`{"text": document}` of the bound corpus's `split`."""
  config = config_lib.own_corpus()
  config_lib.check_split(split)
  if config.format == "tfds":
    texts = _tfds_dataset(config, split, shuffle_files, seed)
  else:
    files = config_lib.split_files(config, split)
    if shuffle_files:
      random.Random(seed).shuffle(files)
    texts = _file_dataset(config, files)
  if config.held_out:
    keep_held_out = split == "validation"
    # tf.equal, not ==: the CLI runs with TF2 behaviour off.
    texts = texts.filter(lambda text: tf.equal(
        is_held_out(text, config.validation_fraction), keep_held_out))
  return texts.map(lambda text: {"text": text})


class OwnCorpusSource(seqio.FunctionDataSource):
  """The bound corpus, with a pre-flight check that reads all of a split."""

  def __init__(self):
    super().__init__(documents, splits=config_lib.SPLITS)

  def preflight_problems(self, split: str) -> List[str]:
    """What would stop `split` from being read; [] when nothing would."""
    return own_corpus_check.problems(split)


_SOURCE = OwnCorpusSource()

registry.add_task(
    SPAN_CORRUPTION_TASK,
    source=_SOURCE,
    preprocessors=denoising.span_corruption_preprocessors(),
    output_features=vocab.output_features(),
    metric_fns=[])

registry.add_task(
    PREFIX_LM_TASK,
    source=_SOURCE,
    preprocessors=denoising.prefix_lm_preprocessors(),
    output_features=vocab.output_features(),
    metric_fns=[])
