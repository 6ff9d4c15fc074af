"""Documents of the user's corpus files, with errors that name file and line.

Plain text and jsonl are read here, in Python, so that every line is checked
as it is read: a binary file, bytes that are not UTF-8 or a jsonl row
without the text field stop the run with `file:line` and the fix instead of
feeding garbage to the tokenizer. TFRecord files are read by TensorFlow in
the task; `tfrecord_documents` reads them record by record for the
pre-flight check, which names the record. Paths may be local or any
filesystem TensorFlow knows (gs://); `.gz` files are gzip-compressed.
"""

import functools
import gzip
import json
from typing import BinaryIO, Iterable, Iterator, Tuple
import zlib

import tensorflow.compat.v2 as tf

from switch_mtf.tasks import own_corpus_config as config_lib

Document = Tuple[int, str]  # (line or record number, text)
_GZIP_MAGIC = b"\x1f\x8b"
_HEAD_BYTES = 8192


def _open(path: str) -> BinaryIO:
  raw = tf.io.gfile.GFile(path, "rb")
  return gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw


def _binary(path: str, number: int, gzip_magic: bool) -> ValueError:
  return ValueError(
      "%s:%d: holds a NUL byte, so this is a binary file, not text.%s"
      % (path, number, " It is gzip-compressed: name it *.gz." if gzip_magic
         else " For tf.train.Example records use own_corpus.format = "
         "'tfrecord'."))


def _check_head(path: str) -> None:
  """A binary file is told by NUL bytes near its start, before any line
  of it fails to decode as text."""
  with _open(path) as f:
    head = f.read(_HEAD_BYTES)
  if b"\0" in head:
    raise _binary(path, head[:head.index(b"\0")].count(b"\n") + 1,
                  head.startswith(_GZIP_MAGIC))


def _lines(path: str) -> Iterator[Tuple[int, str]]:
  """(line number, text without its line end), decoded strictly as UTF-8."""
  try:
    _check_head(path)
    with _open(path) as f:
      for number, raw in enumerate(f, start=1):
        if b"\0" in raw:
          raise _binary(path, number, gzip_magic=False)
        try:
          line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
          raise ValueError(
              "%s:%d: not UTF-8 (%s at byte %d of the line); re-encode the "
              "file as UTF-8, e.g. `iconv -f latin1 -t utf-8`."
              % (path, number, e.reason, e.start)) from None
        if number == 1:
          line = line.lstrip("\ufeff")  # a byte-order mark is no text
        yield number, line.rstrip("\r\n")
  except (EOFError, OSError, zlib.error, tf.errors.OpError) as e:
    if isinstance(e, tf.errors.NotFoundError):
      raise FileNotFoundError("%s does not exist (any more)." % path) from e
    raise ValueError(
        "%s: cannot be read (%s: %s); the file is damaged or truncated."
        % (path, type(e).__name__, e)) from e


def text_documents(path: str, layout: str) -> Iterator[Document]:
  """Documents of a plain-text file: one per line, or blank-line separated.

  Yields (number of the document's first line, text); blank lines are no
  documents.
  """
  if layout == config_lib.ONE_PER_LINE:
    for number, line in _lines(path):
      if line.strip():
        yield number, line
    return
  start, paragraph = 0, []
  for number, line in _lines(path):
    if line.strip():
      start = start if paragraph else number
      paragraph.append(line)
    elif paragraph:
      yield start, "\n".join(paragraph)
      paragraph = []
  if paragraph:
    yield start, "\n".join(paragraph)


def _no_text_key(where: str, kind: str, text_key: str,
                 present: Iterable[str]) -> ValueError:
  return ValueError(
      "%s has no %s %r (own_corpus.text_key); its %ss are %s. Bind "
      "own_corpus.text_key to the one holding the text."
      % (where, kind, text_key, kind, sorted(present)))


def jsonl_documents(path: str, text_key: str) -> Iterator[Document]:
  """The `text_key` field of every row of a jsonl file."""
  for number, line in _lines(path):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError("%s:%d: malformed JSON (%s at column %d)."
                       % (path, number, e.msg, e.colno)) from None
    if not isinstance(row, dict):
      raise ValueError("%s:%d: expected a JSON object, got %s."
                       % (path, number, type(row).__name__))
    if text_key not in row:
      raise _no_text_key("%s:%d: the row" % (path, number), "field", text_key,
                         row)
    text = row[text_key]
    if not isinstance(text, str):
      raise ValueError("%s:%d: field %r is %s, not a string of text."
                       % (path, number, text_key, type(text).__name__))
    if text.strip():
      yield number, text


def tfrecord_compression(path: str) -> str:
  return "GZIP" if path.endswith(".gz") else ""


def tfrecord_documents(path: str, text_key: str) -> Iterator[Document]:
  """(record number, text) of a TFRecord file of tf.train.Example."""
  options = tf.io.TFRecordOptions(compression_type=tfrecord_compression(path))
  number = 0
  try:
    for number, record in enumerate(
        tf.compat.v1.io.tf_record_iterator(path, options), start=1):
      yield number, _example_text(path, number, record, text_key)
  except tf.errors.OpError as e:
    raise ValueError(
        "%s: record %d cannot be read (%s); this is not a TFRecord file%s, "
        "or it is damaged." % (path, number + 1, e.message.splitlines()[0],
                               " (gzip-compressed ones end in .gz)"
                               if not path.endswith(".gz") else "")) from None


def _example_text(path: str, number: int, record: bytes,
                  text_key: str) -> str:
  try:
    example = tf.train.Example.FromString(record)
  except Exception:  # pylint: disable=broad-except  (protobuf's DecodeError)
    raise ValueError("%s: record %d is not a tf.train.Example."
                     % (path, number)) from None
  features = example.features.feature
  if text_key not in features:
    raise _no_text_key("%s: record %d" % (path, number), "feature", text_key,
                       features)
  feature = features[text_key]
  kind = feature.WhichOneof("kind")
  values = feature.bytes_list.value
  if kind != "bytes_list" or len(values) != 1:
    raise ValueError(
        "%s: record %d: feature %r must hold one string (bytes_list with one "
        "value), it holds %s." % (
            path, number, text_key,
            "%d string(s)" % len(values) if kind == "bytes_list" else
            kind or "nothing"))
  try:
    return values[0].decode("utf-8")
  except UnicodeDecodeError as e:
    raise ValueError("%s: record %d: feature %r is not UTF-8 text (%s at "
                     "byte %d)." % (path, number, text_key, e.reason,
                                    e.start)) from None


def documents(path: str, config: config_lib.CorpusConfig
              ) -> Iterator[Document]:
  """The documents of one corpus file of a file format."""
  if config.format == "text":
    return text_documents(path, config.documents)
  if config.format == "jsonl":
    return jsonl_documents(path, config.text_key)
  return tfrecord_documents(path, config.text_key)


def check_file(path: str, config: config_lib.CorpusConfig) -> int:
  """Reads a whole file; returns its number of documents, raises on damage.

  Checked once per file version (path, size and modification time) and
  reading options, so a second run in the same process costs nothing.
  """
  stat = tf.io.gfile.stat(path)
  return _checked_documents(path, stat.length, stat.mtime_nsec,
                            config.format, config.text_key, config.documents)


@functools.lru_cache(maxsize=4096)
def _checked_documents(path: str, unused_length: int, unused_mtime: int,
                       file_format: str, text_key: str, layout: str) -> int:
  config = config_lib.CorpusConfig(format=file_format, text_key=text_key,
                                   documents=layout)
  count = sum(1 for _ in documents(path, config))
  if not count:
    unit = "records" if file_format == "tfrecord" else "documents"
    raise ValueError(
        "%s has no %s (it is empty%s); fill it or leave it out of the "
        "own_corpus glob." % (path, unit, "" if file_format == "tfrecord"
                              else " or holds only blank lines"))
  return count
