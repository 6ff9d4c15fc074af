"""The model's SentencePiece vocabulary, checked against its embedding.

Our tasks add T5's 100 sentinel ids to the SentencePiece model and Mesh TF
pads the embedding to a multiple of 128 rows, so a model converts only with
the vocabulary it was trained with: e.g. T5's 32000 pieces -> 32100 ids ->
32128 rows, the `vocab_size` of every released T5 and Switch model.
Imports into Mesh TF leave our tasks (seqio, t5.data: a few seconds of
start-up) unimported; only reading a trained model's gin needs them.
"""

import os
from typing import Sequence

from mesh_tensorflow.transformer import utils
import sentencepiece
import tensorflow as tf

from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints.errors import ConversionError
from switch_mtf.cli import gin_config

FILE_NAME = "spiece.model"
# T5's sentinel ids (t5.data.DEFAULT_EXTRA_IDS) that our tasks append to a
# SentencePiece model; tests/checkpoints/test_convert_cli.py holds them equal.
EXTRA_IDS = 100


def embedding_rows(path: str) -> int:
  """Mesh TF's embedding rows for the SentencePiece model at `path`."""
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      processor = sentencepiece.SentencePieceProcessor(
          model_proto=f.read())
  except (tf.errors.OpError, RuntimeError, OSError) as e:
    raise ConversionError("%s is not a readable SentencePiece model (%s)."
                          % (path, str(e).splitlines()[0])) from e
  return mtf_names.padded_vocab_size(processor.get_piece_size() + EXTRA_IDS)


def check(path: str, vocab_size: int, described_by: str) -> None:
  """Raises unless the vocabulary yields `vocab_size` embedding rows."""
  rows = embedding_rows(path)
  if rows != vocab_size:
    raise ConversionError(
        "%s gives %d embedding rows (its pieces + %d sentinels, padded to a "
        "multiple of 128) but %s has %d: pass the model's own "
        "vocabulary." % (path, rows, EXTRA_IDS, described_by, vocab_size))


def run_vocabulary_path(described_by: str) -> str:
  """The SentencePiece model of the vocabulary the parsed gin trains with.

  That is `utils.run.vocabulary` (t5's dataset.gin binds it to the
  mixture's), else the vocabulary our tasks select.
  """
  # pylint: disable=g-import-not-at-top
  from switch_mtf.tasks import vocab as task_vocab  # parsing gin imported it
  # pylint: enable=g-import-not-at-top
  vocabulary = gin_config.run_arg("vocabulary")
  if vocabulary is None:  # no mixture bound: a model gin alone
    return task_vocab.vocabulary_path(task_vocab.task_vocabulary())
  # (inputs, targets) vocabularies, as t5's get_vocabulary returns them.
  vocabulary = utils.targets_vocabulary(vocabulary)
  path = getattr(vocabulary, "sentencepiece_model_file", None)
  if not path:
    raise ConversionError(
        "%s trains with %s, not a SentencePiece model; Hugging Face T5 "
        "folders ship one (spiece.model): pass it with --vocabulary."
        % (described_by, type(vocabulary).__name__))
  return path


def model_vocabulary(model_dir: str, gin_files: Sequence[str]) -> str:
  """A model dir's spiece.model, else the vocabulary its gin trains with."""
  path = os.path.join(model_dir, FILE_NAME)
  if os.path.isfile(path):
    return path
  return run_vocabulary_path(", ".join(gin_files))


def copy(path: str, model_dir: str) -> str:
  """Copies the vocabulary into the model dir; returns the copy's path."""
  destination = "%s/%s" % (model_dir, FILE_NAME)
  tf.io.gfile.copy(path, destination, overwrite=True)
  return destination
