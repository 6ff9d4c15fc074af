"""The own-corpus tasks: every format, configured by gin alone.

The reference for each format is T5's own pipeline (the preprocessors of
T5's registered `c4_v220_span_corruption` / `c4_v220_prefix_lm`) applied
with the same seed to the documents the test wrote, not to what our reader
read back: so the reader, the split logic and the preprocessing are all
checked.
"""

import gzip
import json
import os

import gin
import numpy as np
import pytest
import seqio
import t5.data.tasks  # pylint: disable=unused-import  (T5's own tasks)
import tensorflow.compat.v2 as tf
import tensorflow_datasets as tfds

from switch_mtf.tasks import own_corpus
from switch_mtf.tasks import own_corpus_config
from switch_mtf.tasks import paths
from switch_mtf.tasks import vocab
from switch_mtf.tasks import wiki
from tests import repo_paths

SEED = 7
LENGTH = {"inputs": 64, "targets": 16}
_T5_TASKS = {own_corpus.SPAN_CORRUPTION_TASK: "c4_v220_span_corruption",
             own_corpus.PREFIX_LM_TASK: "c4_v220_prefix_lm"}


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _articles(count, start=0):
  """Real text: articles of the shipped Wikipedia validation split."""
  path = os.path.join(paths.WIKI_DIR, wiki.SPLIT_FILES["validation"])
  with gzip.open(path, "rt", encoding="utf-8") as f:
    lines = [line.rstrip("\n").split("\t")[2:] for line in f]
  return lines[start:start + count]


def _bind(**bindings):
  for name, value in bindings.items():
    gin.bind_parameter("switch_mtf.tasks.own_corpus." + name, value)


def _examples(task_name, split="train", length=None):
  dataset = seqio.get_mixture_or_task(task_name).get_dataset(
      length or LENGTH, split=split, shuffle=False, seed=SEED)
  return list(dataset.as_numpy_iterator())


def _t5_reference(task_name, texts, length=None):
  """T5's own preprocessing of `texts`, with the same seed."""
  def documents(split, shuffle_files, seed=None):
    del split, shuffle_files, seed
    return tf.data.Dataset.from_tensor_slices({"text": list(texts)})

  t5_task = seqio.get_mixture_or_task(_T5_TASKS[task_name])
  reference = seqio.Task(
      "own_corpus_reference",
      source=seqio.FunctionDataSource(documents, splits=("train",)),
      preprocessors=t5_task.preprocessors,
      output_features=vocab.output_features())
  dataset = reference.get_dataset(length or LENGTH, split="train",
                                  shuffle=False, seed=SEED)
  return list(dataset.as_numpy_iterator())


def _assert_same_examples(actual, expected):
  assert len(actual) == len(expected) > 0
  for got, want in zip(actual, expected):
    assert sorted(got) == sorted(want)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def _write_text(path, text):
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "wt", encoding="utf-8") as f:
    f.write(text)
  return path


def _write_tfrecord(path, texts, key="text"):
  options = tf.io.TFRecordOptions(
      compression_type="GZIP" if path.endswith(".gz") else "")
  with tf.io.TFRecordWriter(path, options) as writer:
    for text in texts:
      example = tf.train.Example(features=tf.train.Features(feature={
          key: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[text.encode("utf-8")])),
          "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}))
      writer.write(example.SerializeToString())
  return path


# One writer per format: (texts, tmp dir) -> bindings. Each spreads the
# documents over two files, so globs, order and concatenation are exercised.


def _text_per_line(texts, root, suffix=".txt"):
  half = len(texts) // 2
  _write_text(str(root / ("a" + suffix)), "\n".join(texts[:half]) + "\n")
  # Blank lines and CRLF line ends are no documents and no text.
  _write_text(str(root / ("b" + suffix)),
              "\n\n".join(texts[half:]).replace("\n", "\r\n"))
  return dict(format="text", train_files=str(root / ("*" + suffix)))


def _text_blank_lines(texts, root):
  half = len(texts) // 2
  _write_text(str(root / "part-0.txt"), "\n\n".join(texts[:half]))
  _write_text(str(root / "part-1.txt"),
              "\n\n\n" + "\n  \n".join(texts[half:]) + "\n\n")
  return dict(format="text", documents="blank_line_separated",
              train_files=[str(root / "part-0.txt"),
                           str(root / "part-1.txt")])


def _jsonl(texts, root, suffix=".jsonl"):
  rows = [json.dumps({"id": i, "body": t}) for i, t in enumerate(texts)]
  half = len(rows) // 2
  _write_text(str(root / ("0" + suffix)), "\n".join(rows[:half]) + "\n")
  _write_text(str(root / ("1" + suffix)), "\n".join(rows[half:]))
  return dict(format="jsonl", text_key="body",
              train_files=str(root / ("*" + suffix)))


def _tfrecord(texts, root, suffix=".tfrecord"):
  half = len(texts) // 2
  _write_tfrecord(str(root / ("0" + suffix)), texts[:half], key="content")
  _write_tfrecord(str(root / ("1" + suffix)), texts[half:], key="content")
  return dict(format="tfrecord", text_key="content",
              train_files=str(root / ("*" + suffix)))


_FORMATS = {
    "text one per line": (_text_per_line, False),
    "text one per line, gzip": (
        lambda t, r: _text_per_line(t, r, ".txt.gz"), False),
    "text blank-line separated": (_text_blank_lines, True),
    "jsonl": (_jsonl, True),
    "jsonl, gzip": (lambda t, r: _jsonl(t, r, ".jsonl.gz"), True),
    "tfrecord": (_tfrecord, True),
    "tfrecord, gzip": (lambda t, r: _tfrecord(t, r, ".tfrecord.gz"), True),
}


def _documents(multiline):
  """Six documents; with newlines inside where the format allows them."""
  return ["\n".join(a[:3]) if multiline else a[0] for a in _articles(6)]


@pytest.mark.parametrize("name", sorted(_FORMATS))
def test_span_corruption_of_each_format_is_t5s(tmp_path, name):
  write, multiline = _FORMATS[name]
  texts = _documents(multiline)
  _bind(**write(texts, tmp_path))
  _assert_same_examples(
      _examples(own_corpus.SPAN_CORRUPTION_TASK),
      _t5_reference(own_corpus.SPAN_CORRUPTION_TASK, texts))


@pytest.mark.parametrize("name", ["text blank-line separated", "tfrecord"])
def test_prefix_lm_of_each_format_is_t5s(tmp_path, name):
  write, multiline = _FORMATS[name]
  texts = _documents(multiline)
  _bind(**write(texts, tmp_path))
  _assert_same_examples(_examples(own_corpus.PREFIX_LM_TASK),
                        _t5_reference(own_corpus.PREFIX_LM_TASK, texts))


def test_paper_lengths_pack_documents_as_t5_does(tmp_path):
  texts = ["\n".join(a) for a in _articles(12)]
  _bind(**_jsonl(texts, tmp_path))
  length = {"inputs": 512, "targets": 114}
  examples = _examples(own_corpus.SPAN_CORRUPTION_TASK, length=length)
  assert len(examples) > 2
  assert all((len(e["inputs"]), len(e["targets"])) == (512, 114)
             for e in examples[:-1])
  _assert_same_examples(
      examples, _t5_reference(own_corpus.SPAN_CORRUPTION_TASK, texts, length))


# ------------------------------------------------------------ splits


def _texts_of(split):
  return [d["text"].decode("utf-8")
          for d in own_corpus.documents(split, shuffle_files=False)
          .as_numpy_iterator()]


def test_validation_files_are_read_for_the_validation_split(tmp_path):
  train, validation = _documents(False), [a[1] for a in _articles(3, 10)]
  (tmp_path / "valid").mkdir()
  _write_text(str(tmp_path / "train.txt"), "\n".join(train))
  _write_text(str(tmp_path / "valid" / "v.txt"), "\n".join(validation))
  _bind(format="text", train_files=str(tmp_path / "train.txt"),
        validation_files=[str(tmp_path / "valid" / "*.txt")])
  assert _texts_of("train") == train
  assert _texts_of("validation") == validation
  _assert_same_examples(
      _examples(own_corpus.SPAN_CORRUPTION_TASK, "validation"),
      _t5_reference(own_corpus.SPAN_CORRUPTION_TASK, validation))


def test_held_out_fraction_splits_by_document_whatever_the_files(tmp_path):
  texts = [p for a in _articles(60) for p in a][:400]
  texts = list(dict.fromkeys(texts))  # distinct documents
  _write_text(str(tmp_path / "all.txt"), "\n".join(texts))
  _bind(format="text", train_files=str(tmp_path / "all.txt"),
        validation_fraction=0.25)
  train, validation = _texts_of("train"), _texts_of("validation")
  assert sorted(train + validation) == sorted(texts)
  assert not set(train) & set(validation)
  assert 0.15 * len(texts) < len(validation) < 0.35 * len(texts)
  # The same documents in other files and another order: the same split.
  (tmp_path / "shards").mkdir()
  _write_text(str(tmp_path / "shards" / "0.txt"), "\n".join(texts[::-2]))
  _write_text(str(tmp_path / "shards" / "1.txt"), "\n".join(texts[-2::-2]))
  gin.bind_parameter("own_corpus.train_files",
                     str(tmp_path / "shards" / "*.txt"))
  assert sorted(_texts_of("validation")) == sorted(validation)
  assert sorted(_texts_of("train")) == sorted(train)


# ----------------------------------------------------------------- TFDS


class OwnCorpusTestDocs(tfds.core.GeneratorBasedBuilder):
  """A real (tiny) TFDS dataset, prepared by the test: any dataset works."""

  VERSION = tfds.core.Version("1.2.0")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.FeaturesDict({
            "body": tfds.features.Text(), "n": tf.int64}))

  def _split_generators(self, dl_manager):
    del dl_manager
    articles = _articles(9)
    return {"train": self._generate_examples(articles[:6]),
            "test": self._generate_examples(articles[6:])}

  def _generate_examples(self, articles):
    for i, article in enumerate(articles):
      yield i, {"body": "\n".join(article[:2]), "n": i}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  OwnCorpusTestDocs(data_dir=data_dir).download_and_prepare()
  return data_dir


def _tfds_texts(data_dir, split):
  dataset = tfds.load("own_corpus_test_docs:1.2.0", split=split,
                      data_dir=data_dir, shuffle_files=False)
  return [e["body"].decode("utf-8") for e in dataset.as_numpy_iterator()]


def test_tfds_dataset_by_name_and_version(tfds_dir):
  _bind(format="tfds", tfds_name="own_corpus_test_docs:1.2.0",
        tfds_data_dir=tfds_dir, text_key="body",
        tfds_splits={"validation": "test"})
  for split, tfds_split in (("train", "train"), ("validation", "test")):
    texts = _tfds_texts(tfds_dir, tfds_split)
    assert _texts_of(split) == texts
    _assert_same_examples(
        _examples(own_corpus.SPAN_CORRUPTION_TASK, split),
        _t5_reference(own_corpus.SPAN_CORRUPTION_TASK, texts))


def test_tfds_dataset_with_a_held_out_fraction(tfds_dir):
  _bind(format="tfds", tfds_name="own_corpus_test_docs:1.2.0",
        tfds_data_dir=tfds_dir, text_key="body", validation_fraction=0.5)
  texts = _tfds_texts(tfds_dir, "train")
  train, validation = _texts_of("train"), _texts_of("validation")
  assert sorted(train + validation) == sorted(texts)
  assert not set(train) & set(validation)


# --------------------------------------------------------------- config


@pytest.mark.parametrize("bindings,message", [
    ({}, r"own_corpus.format = None: set it to one of"),
    ({"format": "csv"}, r"own_corpus.format = 'csv'"),
    ({"format": "text", "documents": "paragraphs"},
     r"own_corpus.documents = 'paragraphs'"),
    ({"format": "text", "validation_fraction": 1.5},
     r"validation_fraction = 1.5"),
    ({"format": "text", "train_files": "a", "validation_files": "b",
      "validation_fraction": 0.1}, r"both bound: choose"),
    ({"format": "tfds", "tfds_name": "c4/en"}, r"by name and version"),
    ({"format": "text", "tfds_name": "c4/en:3.0.1"},
     r"set own_corpus.format = 'tfds'"),
    ({"format": "tfds", "tfds_name": "c4/en:3.0.1",
      "tfds_splits": {"dev": "test"}}, r"tfds_splits has key\(s\) \['dev'\]"),
])
def test_a_bad_binding_names_itself_and_the_fix(bindings, message):
  _bind(**bindings)
  with pytest.raises(ValueError, match=message):
    own_corpus.documents("train", shuffle_files=False)


def test_unbound_files_of_a_split_say_what_to_bind(tmp_path):
  _bind(format="jsonl")
  with pytest.raises(ValueError, match=r"own_corpus.train_files is not "
                     r"bound.*\*\.jsonl"):
    own_corpus.documents("train", shuffle_files=False)
  _bind(train_files=str(tmp_path / "*.jsonl"))
  with pytest.raises(ValueError, match=r"no validation data: bind "
                     r"own_corpus.validation_files.*validation_fraction"):
    own_corpus.documents("validation", shuffle_files=False)


def test_config_maps_splits_to_their_sources():
  config = own_corpus_config.CorpusConfig(
      format="tfds", tfds_name="x:1.0.0", validation_fraction=0.1)
  assert config.tfds_split("validation") == "train"
  with pytest.raises(ValueError, match=r"splits \['train', 'validation'\], "
                     r"not 'test'"):
    config.source_split("test")


def test_every_binding_in_the_docs_is_a_valid_corpus():
  with open(os.path.join(repo_paths.REPO_DIR, "docs", "tasks.md")) as f:
    docs = f.read()
  block = docs.split("One binding per format")[1].split("```\n")[1]
  examples = [e for e in block.split("\n\n") if e.strip()]
  formats = []
  for example in examples:
    gin.clear_config()
    gin.parse_config(example)
    formats.append(own_corpus_config.own_corpus().format)
  assert sorted(set(formats)) == sorted(own_corpus_config.FORMATS)
  assert len(examples) == 5
