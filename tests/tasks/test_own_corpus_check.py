"""Bad own-corpus input stops the run before its first step, naming the fix.

Each case goes through the pre-flight data check the guarded training runs
(switch_mtf.training.preflight.data_problems, before step 1), so what is
asserted is the message a user gets. The bad file is never the first one of
the glob: reading the first example alone would not find it.
"""

import gzip
import json

import gin
import pytest
import tensorflow.compat.v2 as tf
import tensorflow_datasets as tfds

from switch_mtf.tasks import corpus_files
from switch_mtf.tasks import own_corpus
from switch_mtf.training import preflight

LENGTH = {"inputs": 64, "targets": 16}
GOOD_TEXT = "A good first document.\nAnd a second one.\n"
GOOD_ROW = json.dumps({"text": "A good row of text."})


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _bind(**bindings):
  for name, value in bindings.items():
    gin.bind_parameter("switch_mtf.tasks.own_corpus." + name, value)


def _problems(split="train", task=own_corpus.SPAN_CORRUPTION_TASK):
  return preflight.data_problems(task, LENGTH, split)


def _write(path, data):
  mode = "wb" if isinstance(data, bytes) else "w"
  with open(path, mode) as f:
    f.write(data)
  return str(path)


def _example(**features):
  def feature(value):
    if isinstance(value, int):
      return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[v if isinstance(v, bytes) else v.encode() for v in value]))
  return tf.train.Example(features=tf.train.Features(feature={
      k: feature(v) for k, v in features.items()})).SerializeToString()


def _write_records(path, records):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in records:
      writer.write(record)
  return str(path)


def _only(problems):
  assert len(problems) == 1, problems
  return problems[0]


def _after_a_good_file(tmp_path, name, content):
  """Binds a text or jsonl glob: a good file, then `name` with `content`."""
  suffix = name.split(".", 1)[1]
  file_format = "jsonl" if suffix.startswith("jsonl") else "text"
  _write(tmp_path / ("a." + suffix), GOOD_ROW + "\n" if file_format ==
         "jsonl" else GOOD_TEXT)
  _bind(format=file_format, train_files=str(tmp_path / ("*." + suffix)))
  return _write(tmp_path / name, content)


def test_good_files_have_no_problems(tmp_path):
  _write(tmp_path / "a.txt", GOOD_TEXT)
  _bind(format="text", train_files=str(tmp_path / "*.txt"))
  assert not _problems()


def test_a_glob_that_matches_nothing(tmp_path):
  _write(tmp_path / "a.txt", GOOD_TEXT)
  _bind(format="text", train_files=[str(tmp_path / "*.txt"),
                                    str(tmp_path / "typo*.txt")])
  assert (f"own_corpus.train_files: '{tmp_path}/typo*.txt' matches no file; "
          "fix the glob or the path.") in _only(_problems())


def test_a_relative_glob_names_the_working_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  _bind(format="text", train_files="data/*.txt")
  assert f"(relative to the working directory {tmp_path})" in _only(
      _problems())


def test_a_glob_that_matches_a_folder(tmp_path):
  (tmp_path / "shards").mkdir()
  _bind(format="text", train_files=str(tmp_path / "shard*"))
  assert f"matches the folder {tmp_path}/shards; name its files" in _only(
      _problems())


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_an_empty_file(tmp_path, content):
  empty = _after_a_good_file(tmp_path, "b.txt", content)
  problem = _only(_problems())
  assert f"{empty} has no documents (it is empty or holds only blank " in (
      problem)
  assert "fill it or leave it out of the own_corpus glob" in problem


def test_an_empty_tfrecord_file(tmp_path):
  _write_records(tmp_path / "a.tfrecord", [_example(text=["Good text."])])
  empty = _write_records(tmp_path / "b.tfrecord", [])
  _bind(format="tfrecord", train_files=str(tmp_path / "*.tfrecord"))
  assert f"{empty} has no records (it is empty)" in _only(_problems())


def test_a_binary_file(tmp_path):
  # A PNG: its first line is no UTF-8 either, but "binary" is the news.
  binary = _after_a_good_file(tmp_path, "b.txt",
                              b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0")
  assert f"{binary}:3: holds a NUL byte, so this is a binary file" in _only(
      _problems())


def test_binary_data_deep_in_a_text_file(tmp_path):
  text = _write(tmp_path / "a.txt", GOOD_TEXT * 2000 + "x\0y\n")
  _bind(format="text", train_files=text)
  assert f"{text}:4001: holds a NUL byte" in _only(_problems())


def test_a_gzip_file_without_gz_suffix(tmp_path):
  packed = _after_a_good_file(tmp_path, "b.jsonl", gzip.compress(b"x" * 100))
  assert (f"{packed}:1: holds a NUL byte, so this is a binary file, not "
          "text. It is gzip-compressed: name it *.gz.") in _only(_problems())


def test_invalid_utf8_names_file_and_line(tmp_path):
  latin1 = _after_a_good_file(
      tmp_path, "b.txt", "Fine.\n\nCaf\u00e9 au lait.\n".encode("latin-1"))
  problem = _only(_problems())
  assert f"{latin1}:3: not UTF-8 (invalid continuation byte at byte 3" in (
      problem)
  assert "re-encode the file as UTF-8" in problem


def test_a_damaged_gzip_file(tmp_path):
  _write(tmp_path / "a.txt", GOOD_TEXT)
  truncated = _write(tmp_path / "b.txt.gz",
                     gzip.compress(GOOD_TEXT.encode() * 50)[:-20])
  _bind(format="text", train_files=str(tmp_path / "*.txt*"))
  assert f"{truncated}: cannot be read (EOFError" in _only(_problems())


def test_a_jsonl_row_without_the_field(tmp_path):
  rows = _after_a_good_file(tmp_path, "b.jsonl", "\n".join(
      [GOOD_ROW, json.dumps({"body": "x", "id": 3}), GOOD_ROW]))
  assert (f"{rows}:2: the row has no field 'text' (own_corpus.text_key); "
          "its fields are ['body', 'id']. Bind own_corpus.text_key") in _only(
              _problems())


@pytest.mark.parametrize("line,message", [
    ('{"text": ', r"malformed JSON \(Expecting value at column 10\)"),
    ("[1, 2]", r"expected a JSON object, got list"),
    ('{"text": 42}', r"field 'text' is int, not a string of text"),
])
def test_a_jsonl_row_that_is_no_text_object(tmp_path, line, message):
  rows = _write(tmp_path / "a.jsonl", GOOD_ROW + "\n\n" + line + "\n")
  _bind(format="jsonl", train_files=rows)
  with pytest.raises(ValueError, match=rf"^{rows}:3: {message}"):
    corpus_files.check_file(rows, own_corpus.config_lib.own_corpus())


def test_a_tfrecord_without_the_feature(tmp_path):
  _write_records(tmp_path / "a.tfrecord", [_example(text=["Good."])])
  records = _write_records(tmp_path / "b.tfrecord", [
      _example(text=["Good."]), _example(body=["Text."], n=3)])
  _bind(format="tfrecord", train_files=str(tmp_path / "*.tfrecord"))
  assert (f"{records}: record 2 has no feature 'text' (own_corpus.text_key);"
          " its features are ['body', 'n']") in _only(_problems())


@pytest.mark.parametrize("features,message", [
    ({"text": 5}, "must hold one string (bytes_list with one value), it "
     "holds int64_list"),
    ({"text": ["a", "b"]}, "it holds 2 string(s)"),
    ({"text": [b"caf\xe9"]}, "is not UTF-8 text (unexpected end of data at "
     "byte 3)"),
])
def test_a_tfrecord_feature_that_is_no_text(tmp_path, features, message):
  records = _write_records(tmp_path / "a.tfrecord", [_example(**features)])
  _bind(format="tfrecord", train_files=records)
  assert f"{records}: record 1: feature 'text' " in _only(_problems())
  assert message in _only(_problems())


def test_a_text_file_read_as_tfrecord(tmp_path):
  text = _write(tmp_path / "a.tfrecord", GOOD_TEXT * 10)
  _bind(format="tfrecord", train_files=text)
  assert f"{text}: record 1 cannot be read" in _only(_problems())
  assert "this is not a TFRecord file" in _only(_problems())


def test_every_bad_file_is_reported_at_once(tmp_path):
  _write(tmp_path / "a.txt", "")
  _write(tmp_path / "b.txt", b"\xff\n")
  _bind(format="text", train_files=str(tmp_path / "*.txt"))
  problems = _problems()
  assert [p.split(": ", 1)[1].split(" ")[0] for p in problems] == [
      f"{tmp_path}/a.txt", f"{tmp_path}/b.txt:1:"]
  assert all(p.startswith("task 'own_corpus_span_corruption': ")
             for p in problems)


def test_validation_split_files_are_checked_for_validation(tmp_path):
  _write(tmp_path / "train.txt", GOOD_TEXT)
  _bind(format="text", train_files=str(tmp_path / "train.txt"),
        validation_files=str(tmp_path / "valid*.txt"))
  assert not _problems("train")
  assert "own_corpus.validation_files: " in _only(_problems("validation"))


def test_an_unbound_corpus_says_what_to_bind():
  assert "own_corpus.format = None: set it to one of" in _only(_problems())


# ----------------------------------------------------------------- TFDS


class OwnCorpusCheckDocs(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.
                                 FeaturesDict({"body": tfds.features.Text(),
                                               "n": tf.int64}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i in range(3):
      yield i, {"body": "Document %d." % i, "n": i}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  OwnCorpusCheckDocs(data_dir=data_dir).download_and_prepare()
  return data_dir


def _bind_tfds(name, data_dir, **bindings):
  _bind(format="tfds", tfds_name=name, tfds_data_dir=data_dir, **bindings)


def test_a_prepared_tfds_dataset_has_no_problems(tfds_dir):
  _bind_tfds("own_corpus_check_docs:1.0.0", tfds_dir, text_key="body",
             validation_fraction=0.5)
  assert not _problems("train") and not _problems("validation")


def test_a_tfds_name_that_does_not_exist(tfds_dir):
  _bind_tfds("own_corpus_chek_docs:1.0.0", tfds_dir)
  assert ("own_corpus.tfds_name = 'own_corpus_chek_docs:1.0.0': TFDS has "
          "no dataset 'own_corpus_chek_docs' (did you mean "
          "own_corpus_check_docs") in _only(_problems())


def test_a_tfds_version_or_config_that_does_not_exist(tfds_dir):
  _bind_tfds("own_corpus_check_docs:9.0.0", tfds_dir)
  problem = _only(_problems())
  assert "cannot be loaded at version 9.0.0, only: 1.0.0" in problem
  assert "point own_corpus.tfds_data_dir" in problem


def test_a_tfds_dataset_that_is_not_prepared(tmp_path):
  _bind_tfds("own_corpus_check_docs:1.0.0", str(tmp_path))
  problem = _only(_problems())
  assert "'own_corpus_check_docs:1.0.0' is not prepared (" in problem
  assert "`tfds build own_corpus_check_docs --data_dir=<dir>`" in problem


def test_a_tfds_split_or_feature_that_does_not_exist(tfds_dir):
  _bind_tfds("own_corpus_check_docs:1.0.0", tfds_dir, text_key="text")
  feature, = _problems("train")
  assert ("has no feature 'text' (own_corpus.text_key); its features are "
          "['body', 'n']") in feature
  gin.bind_parameter("own_corpus.text_key", "n")
  assert "feature 'n' is" in _only(_problems("train"))
  gin.bind_parameter("own_corpus.text_key", "body")
  assert ("has no split 'validation' (its splits: ['train']); map the "
          "'validation' split with own_corpus.tfds_splits = {'validation': "
          "'<split>'} or hold out own_corpus.validation_fraction") in _only(
              _problems("validation"))
