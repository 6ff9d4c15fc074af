"""mC4 per language and the mT5 mixture, on TFDS mock data; the mT5 vocabulary.

`c4/multilingual:3.0.1` is read from prepared files (the installed TFDS code
is at 3.1.0), so the test writes the metadata files of such a prepared copy,
with a different number of examples per language, and mocks the examples
with `tfds.testing.mock_data` over it.
"""

import json

import gin
import numpy as np
import pytest
import seqio
import t5.data.tasks  # pylint: disable=unused-import  (T5's own tasks)
import tensorflow.compat.v2 as tf
import tensorflow_datasets as tfds
from sentencepiece import sentencepiece_model_pb2
from tensorflow_datasets.testing import mocking

from switch_mtf.tasks import mc4
from switch_mtf.tasks import paths
from switch_mtf.tasks import vocab
from switch_mtf.training import preflight

SEED = 3
LENGTH = {"inputs": 64, "targets": 16}
SPLIT_SIZE_STEP = 997  # training examples of the i-th language: (i+1) * 997


@pytest.fixture(autouse=True)
def _clean_gin(monkeypatch):
  monkeypatch.delenv(vocab.VOCABULARY_ENV_VAR, raising=False)
  gin.clear_config()
  yield
  gin.clear_config()


def _builder_languages():
  """The languages TFDS's own multilingual config builds splits for."""
  return tfds.builder("c4/multilingual",
                      data_dir="/nonexistent").builder_config.languages


def _train_size(index):
  return (index + 1) * SPLIT_SIZE_STEP


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory):
  """Metadata of a prepared c4/multilingual:3.0.1, as on Cloud Storage."""
  root = tmp_path_factory.mktemp("tfds")
  builder = tfds.builder("c4/multilingual", data_dir=str(root / "unused"))
  version_dir = root / "c4" / "multilingual" / "3.0.1"
  version_dir.mkdir(parents=True)
  builder.info.write_to_directory(str(version_dir))
  info_path = version_dir / "dataset_info.json"
  info = json.loads(info_path.read_text())
  info["version"] = "3.0.1"
  info["splits"] = []
  for i, language in enumerate(_builder_languages()):
    for split, size in ((language, _train_size(i)),
                        (language + "-validation", 50)):
      info["splits"].append({"name": split, "shardLengths": [str(size)],
                             "numBytes": "0"})
  info_path.write_text(json.dumps(info))
  return str(root)


def _mock(prepared_dir, num_examples=20):
  return mocking.mock_data(num_examples=num_examples,
                           policy=mocking.MockPolicy.USE_FILES,
                           data_dir=prepared_dir)


def test_a_span_corruption_task_per_mc4_language(prepared_dir):
  languages = _builder_languages()
  assert len(languages) == 107 and "zh-Latn" in languages
  mixture = seqio.get_mixture_or_task(mc4.MIXTURE)
  assert sorted(t.name for t in mixture.tasks) == sorted(
      "mc4_%s_span_corruption" % lang.replace("-", "_")
      for lang in languages)
  with _mock(prepared_dir):
    for i, language in enumerate(languages):
      source = seqio.get_mixture_or_task(mc4.task_name(language)).source
      assert source.tfds_dataset.name == "c4/multilingual:3.0.1"
      # Each reads its own language's splits (sizes differ by language).
      assert source.num_input_examples("train") == _train_size(i)
      assert source.num_input_examples("validation") == 50


def test_mixture_samples_languages_by_size_to_the_power_0_3(prepared_dir):
  mixture = seqio.get_mixture_or_task(mc4.MIXTURE)
  with _mock(prepared_dir):
    rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
  # mT5: p(L) proportional to |L|^alpha, alpha = 0.3.
  sizes = {mc4.task_name(lang): _train_size(i)
           for i, lang in enumerate(_builder_languages())}
  expected = {name: n ** 0.3 for name, n in sizes.items()}
  total, expected_total = sum(rates.values()), sum(expected.values())
  for name in sizes:
    assert rates[name] / total == pytest.approx(
        expected[name] / expected_total, rel=1e-9)
  # Small languages are upsampled relative to their share of examples.
  smallest = mc4.task_name(_builder_languages()[0])
  assert rates[smallest] / total > sizes[smallest] / sum(sizes.values())


@pytest.mark.parametrize("language", ["de", "zh-Latn"])
def test_a_language_task_is_t5_span_corruption_of_its_documents(
    prepared_dir, language):
  task = seqio.get_mixture_or_task(mc4.task_name(language))
  with _mock(prepared_dir):
    texts = [d["text"] for d in task.source.get_dataset(
        "validation", shuffle=False).as_numpy_iterator()]
    examples = list(task.get_dataset(LENGTH, split="validation",
                                     shuffle=False, seed=SEED)
                    .as_numpy_iterator())
  def documents(split, shuffle_files, seed=None):
    del split, shuffle_files, seed
    return tf.data.Dataset.from_tensor_slices({"text": texts})

  t5_task = seqio.get_mixture_or_task("c4_v220_span_corruption")
  reference = seqio.Task(
      "mc4_reference",
      source=seqio.FunctionDataSource(documents, splits=("validation",)),
      preprocessors=t5_task.preprocessors,
      output_features=vocab.output_features())
  expected = list(reference.get_dataset(LENGTH, split="validation",
                                        shuffle=False, seed=SEED)
                  .as_numpy_iterator())
  assert len(examples) == len(expected) > 0
  for got, want in zip(examples, expected):
    for key in ("inputs", "targets"):
      np.testing.assert_array_equal(got[key], want[key])


def test_unprepared_mc4_stops_the_run_before_its_first_step(tmp_path,
                                                            monkeypatch):
  # As --t5_tfds_data_dir pointing at a folder without mC4.
  monkeypatch.setattr(seqio.utils, "_TFDS_DATA_DIR_OVERRIDE", str(tmp_path))
  monkeypatch.setattr(seqio.utils.LazyTfdsLoader, "_MEMOIZED_BUILDERS", {})
  (problem,) = preflight.data_problems(mc4.MIXTURE, LENGTH, "train")
  assert problem.startswith(
      "mixture 'mc4_span_corruption': its sampling rates cannot be computed")
  assert "cannot be loaded at version 3.0.1" in problem
  assert "--t5_tfds_data_dir" in problem


# ----------------------------------------------------------- vocabulary


def _stand_in_for_mt5(path):
  """A local model shaped like mT5's: its own pieces end in 100 sentinels
  (<extra_id_99> ... <extra_id_0>), so nothing may be appended."""
  with open(paths.EMBEDDED_VOCAB_PATH, "rb") as f:
    model = sentencepiece_model_pb2.ModelProto.FromString(f.read())
  base = len(model.pieces)
  for i in reversed(range(100)):
    model.pieces.add(
        piece="<extra_id_%d>" % i, score=0.0,
        type=sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED)
  with open(path, "wb") as f:
    f.write(model.SerializeToString())
  return base


def test_mt5_vocabulary_is_chosen_by_name(tmp_path, monkeypatch):
  gin.bind_parameter("switch_mtf.tasks.task_vocabulary.name", "mt5")
  assert vocab.VOCABULARY.sentencepiece_model_file == (
      "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model")
  assert vocab.VOCABULARY.extra_ids == 0
  stand_in = str(tmp_path / "mc4_stand_in.model")
  base = _stand_in_for_mt5(stand_in)
  monkeypatch.setitem(vocab.VOCABULARIES, "mt5", stand_in)
  assert vocab.VOCABULARY.vocab_size == base + 100
  # Span corruption's sentinels are the model's own <extra_id_N> pieces.
  sentinels = [vocab.VOCABULARY.vocab_size - 1 - i for i in range(3)]
  assert [vocab.VOCABULARY.tokenizer.IdToPiece(i) for i in sentinels] == [
      "<extra_id_0>", "<extra_id_1>", "<extra_id_2>"]
  gin.bind_parameter("switch_mtf.tasks.task_vocabulary.name", "embedded")
  assert vocab.VOCABULARY.extra_ids == 100
  assert vocab.VOCABULARY.vocab_size == base + 100
