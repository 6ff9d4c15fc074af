"""The user's own pretraining corpus, described by gin bindings alone.

`own_corpus_span_corruption` and `own_corpus_prefix_lm` (own_corpus.py) read
whatever `own_corpus` is bound to, e.g.

  own_corpus.format = 'jsonl'
  own_corpus.train_files = ['/data/shards/*.jsonl.gz']
  own_corpus.text_key = 'body'
  own_corpus.validation_fraction = 0.01

Tasks are registered when `switch_mtf.tasks` is imported, before the CLI
parses gin, so the binding is read each time data is requested. A mistake
in it (an unknown format, both a validation glob and a held-out fraction,
...) is an error naming the binding and its fix.
"""

import dataclasses
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import gin
import tensorflow.compat.v2 as tf

FORMATS = ("text", "jsonl", "tfrecord", "tfds")
FILE_FORMATS = ("text", "jsonl", "tfrecord")
# How a plain-text file holds its documents.
ONE_PER_LINE = "one_per_line"
BLANK_LINE_SEPARATED = "blank_line_separated"
DOCUMENT_LAYOUTS = (ONE_PER_LINE, BLANK_LINE_SEPARATED)
SPLITS = ("train", "validation")
# A held-out fraction is drawn by a fingerprint of each document's text, so
# the split is the same whatever the file order or sharding.
HASH_BUCKETS = 1_000_000

Globs = Union[None, str, Sequence[str]]


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
  """A checked `own_corpus` binding (see the gin configurable)."""
  format: str
  train_files: Tuple[str, ...] = ()
  validation_files: Tuple[str, ...] = ()
  validation_fraction: float = 0.0
  text_key: str = "text"
  documents: str = ONE_PER_LINE
  tfds_name: str = ""
  tfds_data_dir: Optional[str] = None
  tfds_splits: Tuple[Tuple[str, str], ...] = (("train", "train"),
                                              ("validation", "validation"))

  @property
  def held_out(self) -> bool:
    """Whether validation is a fraction of the training documents."""
    return self.validation_fraction > 0

  def source_split(self, split: str) -> str:
    """The split that holds `split`'s documents (train, when held out)."""
    check_split(split)
    return "train" if self.held_out else split

  def tfds_split(self, split: str) -> str:
    """The TFDS split read for `split`."""
    return dict(self.tfds_splits)[self.source_split(split)]

  def file_patterns(self, split: str) -> Tuple[str, ...]:
    """The globs that hold `split`'s documents; an unbound one is an error."""
    source = self.source_split(split)
    patterns = (self.train_files if source == "train"
                else self.validation_files)
    if not patterns:
      if source == "train":
        raise ValueError(
            "own_corpus.train_files is not bound: set it to the glob(s) of "
            "your %s files, e.g. own_corpus.train_files = "
            "['/data/corpus/*.%s']." % (self.format, _EXAMPLE_SUFFIX[
                self.format]))
      raise ValueError(
          "The own corpus has no validation data: bind "
          "own_corpus.validation_files (glob(s) of held-out files) or "
          "own_corpus.validation_fraction (e.g. 0.01, a share of the "
          "training documents).")
    return patterns


_EXAMPLE_SUFFIX = {"text": "txt", "jsonl": "jsonl", "tfrecord": "tfrecord"}


def check_split(split: str) -> None:
  if split not in SPLITS:
    raise ValueError("The own-corpus tasks have splits %s, not %r."
                     % (list(SPLITS), split))


def _globs(value: Globs, binding: str) -> Tuple[str, ...]:
  if value is None:
    return ()
  patterns = (value,) if isinstance(value, str) else tuple(value)
  if not all(isinstance(p, str) and p.strip() for p in patterns):
    raise ValueError(
        "own_corpus.%s = %r: expected a glob or a list of globs (strings), "
        "e.g. ['/data/train-*.txt']." % (binding, value))
  return patterns


# pylint: disable=redefined-builtin  (`format` is the binding users write)
@gin.configurable(module="switch_mtf.tasks")
def own_corpus(format: Optional[str] = None,
               train_files: Globs = None,
               validation_files: Globs = None,
               validation_fraction: float = 0.0,
               text_key: str = "text",
               documents: str = ONE_PER_LINE,
               tfds_name: Optional[str] = None,
               tfds_data_dir: Optional[str] = None,
               tfds_splits: Optional[Mapping[str, str]] = None
               ) -> CorpusConfig:
  """The corpus the own-corpus tasks read; raises naming a bad binding.

  Args:
    format: 'text' (UTF-8 plain text), 'jsonl' (one JSON object a line),
      'tfrecord' (tf.train.Example records) or 'tfds' (a TFDS dataset).
      Files ending in `.gz` are read gzip-compressed.
    train_files: file formats: glob or list of globs of the training files.
    validation_files: file formats: glob(s) of the validation files.
    validation_fraction: instead of validation files (or a TFDS validation
      split): this share of the training documents, chosen by a fingerprint
      of their text, is held out for validation and left out of training.
    text_key: the jsonl field, tf.train.Example feature or TFDS feature that
      holds the text.
    documents: 'text' format: 'one_per_line', or 'blank_line_separated'
      (a document's lines are joined with newlines, as in C4).
    tfds_name: 'tfds' format: `name[/config]:version`.
    tfds_data_dir: 'tfds' format: where the prepared dataset is (default:
      TFDS's own, or --t5_tfds_data_dir).
    tfds_splits: 'tfds' format: TFDS split per task split, e.g.
      {'validation': 'test'}; default train -> 'train', validation ->
      'validation'.

  Returns:
    The checked configuration.
  """
  if format not in FORMATS:
    raise ValueError(
        "own_corpus.format = %r: set it to one of %s (e.g. --gin_param="
        "\"own_corpus.format='text'\")." % (format, list(FORMATS)))
  if documents not in DOCUMENT_LAYOUTS:
    raise ValueError("own_corpus.documents = %r: use one of %s."
                     % (documents, list(DOCUMENT_LAYOUTS)))
  if not isinstance(text_key, str) or not text_key:
    raise ValueError("own_corpus.text_key = %r: name the field or feature "
                     "that holds the text, e.g. 'text'." % (text_key,))
  if not 0 <= validation_fraction < 1:
    raise ValueError("own_corpus.validation_fraction = %r: use a share in "
                     "[0, 1), e.g. 0.01." % (validation_fraction,))
  train, validation = (_globs(train_files, "train_files"),
                       _globs(validation_files, "validation_files"))
  splits = _tfds_splits(tfds_splits)
  if format == "tfds":
    if not tfds_name or ":" not in tfds_name:
      raise ValueError(
          "own_corpus.tfds_name = %r: the 'tfds' format reads a TFDS dataset "
          "by name and version, e.g. 'wikipedia/20230601.de:1.0.0'."
          % (tfds_name,))
    if train or validation:
      raise ValueError(
          "own_corpus.train_files / validation_files are bound but "
          "own_corpus.format = 'tfds' reads own_corpus.tfds_name; remove "
          "the file bindings or choose a file format.")
    if validation_fraction and tfds_splits and "validation" in tfds_splits:
      raise ValueError(
          "own_corpus.tfds_splits maps 'validation' and "
          "own_corpus.validation_fraction is set too: choose one.")
  else:
    if tfds_name:
      raise ValueError(
          "own_corpus.tfds_name = %r is bound but own_corpus.format = %r; "
          "set own_corpus.format = 'tfds' to read it." % (tfds_name, format))
    if validation and validation_fraction:
      raise ValueError(
          "own_corpus.validation_files and own_corpus.validation_fraction "
          "are both bound: choose held-out files or a held-out fraction.")
  return CorpusConfig(
      format=format, train_files=train, validation_files=validation,
      validation_fraction=float(validation_fraction), text_key=text_key,
      documents=documents, tfds_name=tfds_name or "",
      tfds_data_dir=tfds_data_dir, tfds_splits=splits)
# pylint: enable=redefined-builtin


def _tfds_splits(value: Optional[Mapping[str, str]]
                 ) -> Tuple[Tuple[str, str], ...]:
  splits: Dict[str, str] = {"train": "train", "validation": "validation"}
  unknown = sorted(set(value or {}) - set(SPLITS))
  if unknown:
    raise ValueError(
        "own_corpus.tfds_splits has key(s) %s; the tasks' splits are %s "
        "(e.g. {'validation': 'test'})." % (unknown, list(SPLITS)))
  splits.update(value or {})
  return tuple(sorted(splits.items()))


def resolve_files(patterns: Sequence[str], binding: str) -> List[str]:
  """The files the globs match, in order, each once; none is an error."""
  files = []
  for pattern in patterns:
    matched = sorted(tf.io.gfile.glob(pattern))
    if not matched:
      hint = ("" if "://" in pattern or os.path.isabs(pattern) else
              " (relative to the working directory %s)" % os.getcwd())
      raise FileNotFoundError(
          "own_corpus.%s: %r matches no file%s; fix the glob or the path."
          % (binding, pattern, hint))
    for path in matched:
      if tf.io.gfile.isdir(path):
        raise IsADirectoryError(
            "own_corpus.%s: %r matches the folder %s; name its files, e.g. "
            "%r." % (binding, pattern, path, os.path.join(path, "*")))
      if path not in files:
        files.append(path)
  return files


def split_files(config: CorpusConfig, split: str) -> List[str]:
  """The files holding `split`'s documents (file formats)."""
  binding = ("train_files" if config.source_split(split) == "train"
             else "validation_files")
  return resolve_files(config.file_patterns(split), binding)


def held_out_threshold(fraction: float) -> int:
  """Documents whose fingerprint bucket is below this are held out."""
  return int(round(fraction * HASH_BUCKETS))
