"""Smoke-test tasks over a small public-domain corpus shipped in the repo.

They need no vocabulary file (bytes) and exist so that the install and the
`t5_mesh_transformer` plumbing can be exercised in seconds; results on them
mean nothing.
"""

import functools
import os

import seqio
import t5.data.preprocessors
import t5.evaluation.metrics
import tensorflow.compat.v2 as tf

SMOKE_TEXT = os.path.join(
    os.path.dirname(__file__), "data", "tinyshakespeare",
    "input_first8000.txt.gz")

BYTE_VOCABULARY = seqio.ByteVocabulary(extra_ids=100)
BYTE_FEATURES = {
    "inputs": seqio.Feature(vocabulary=BYTE_VOCABULARY, add_eos=True),
    "targets": seqio.Feature(vocabulary=BYTE_VOCABULARY, add_eos=True),
}
# Every 20th line is held out, so the split is fixed and disjoint.
_VALIDATION_EVERY = 20


def smoke_lines(split: str, shuffle_files: bool, seed=None) -> tf.data.Dataset:
  """Non-empty lines of the smoke corpus as {"text": ...}, split by index."""
  del shuffle_files, seed
  lines = tf.data.TextLineDataset(SMOKE_TEXT, compression_type="GZIP")
  lines = lines.enumerate()
  keep_validation = split == "validation"
  # tf.equal, not ==: the CLI disables v2 behaviour, where == on tensors
  # compares identities.
  lines = lines.filter(lambda i, line: tf.logical_and(
      tf.equal(tf.equal(i % _VALIDATION_EVERY, 0), keep_validation),
      tf.strings.length(tf.strings.strip(line)) > 0))
  return lines.map(lambda i, line: {"text": line})


seqio.TaskRegistry.add(
    "smoke_span_corruption",
    source=seqio.FunctionDataSource(
        smoke_lines, splits=("train", "validation")),
    preprocessors=[
        functools.partial(
            t5.data.preprocessors.rekey, key_map={"inputs": None,
                                                  "targets": "text"}),
        seqio.preprocessors.tokenize,
        t5.data.preprocessors.span_corruption,
        seqio.preprocessors.append_eos_after_trim,
    ],
    output_features=BYTE_FEATURES,
    metric_fns=[])


def _line_pairs(split: str, shuffle_files: bool, seed=None) -> tf.data.Dataset:
  """Consecutive line pairs as {"inputs": line, "targets": next line}."""
  pairs = smoke_lines(split, shuffle_files, seed).batch(2, drop_remainder=True)
  return pairs.map(lambda ex: {"inputs": ex["text"][0],
                               "targets": ex["text"][1]})


# Inputs and targets keep their text, so eval mode can decode and score.
seqio.TaskRegistry.add(
    "smoke_next_line",
    source=seqio.FunctionDataSource(_line_pairs,
                                    splits=("train", "validation")),
    preprocessors=[seqio.preprocessors.tokenize,
                   seqio.preprocessors.append_eos_after_trim],
    output_features=BYTE_FEATURES,
    metric_fns=[t5.evaluation.metrics.sequence_accuracy])
