"""The TFDS-backed tasks, offline, on tfds mock data over the real specs.

`tfds.testing.mock_data` generates random examples from each builder's real
feature spec. C4 is read at version 3.0.1, which the installed TFDS code
(3.1.0) can only load from prepared files, as on Cloud TPU; the test writes
the metadata files such a prepared dataset has (same features) and mocks
with them, so the read-only builder path users take is the one exercised.
"""

import numpy as np
import pytest
import seqio
from tensorflow_datasets.testing import mocking
from t5.data import glue_utils

from switch_mtf.tasks import c4
from switch_mtf.tasks import local_superglue
from switch_mtf.tasks import paths
from switch_mtf.tasks import readers
from switch_mtf.tasks import superglue
from switch_mtf.tasks import superglue_rows
from switch_mtf.tasks import vocab
from tests.tasks import superglue_testing
from tests.tasks import tfds_reference


SENTINEL_0 = vocab.VOCABULARY.vocab_size - 1
EOS = 1


@pytest.fixture(scope="module")
def metadata_dir(tmp_path_factory):
  """The metadata files of the prepared datasets, for MockPolicy.USE_FILES."""
  return tfds_reference.write_prepared_metadata(
      str(tmp_path_factory.mktemp("tfds")))


def _mock(metadata_dir, num_examples):
  return mocking.mock_data(num_examples=num_examples,
                           policy=mocking.MockPolicy.USE_FILES,
                           data_dir=metadata_dir)


def _task_examples(name, split, limit=None):
  ds = seqio.get_mixture_or_task(name).get_dataset(
      {"inputs": 512, "targets": 114}, split=split, shuffle=False)
  return list((ds.take(limit) if limit else ds).as_numpy_iterator())


def _source_examples(name, split):
  ds = seqio.get_mixture_or_task(name).source.get_dataset(split, shuffle=False)
  return list(ds.as_numpy_iterator())


# ------------------------------------------------------------------- C4


def test_c4_span_corruption_structure_and_lengths(metadata_dir):
  with _mock(metadata_dir, num_examples=130):
    task = seqio.get_mixture_or_task("c4_span_corruption")
    assert task.source.tfds_dataset.builder.version == "3.0.1"
    documents = _source_examples("c4_span_corruption", "train")
    examples = _task_examples("c4_span_corruption", "train", limit=2)
  encode = vocab.VOCABULARY.tokenizer.EncodeAsIds
  stream = [t for d in documents[:128] for t in encode(d["text"].decode())]
  assert len(stream) >= 2 * 568
  for i, example in enumerate(examples):
    inputs, targets = example["inputs"].tolist(), example["targets"].tolist()
    assert (len(inputs), len(targets)) == (512, 114)
    assert inputs[-1] == EOS and targets[-1] == EOS
    sentinels = [t for t in inputs if t > SENTINEL_0 - 100]
    assert sentinels == [t for t in targets if t > SENTINEL_0 - 100]
    assert sentinels[0] == SENTINEL_0 and len(sentinels) == 28
    # Putting every target span back at its sentinel gives the text back.
    spans, rebuilt = {}, []
    for token in targets[:-1]:
      if token in sentinels:
        key = token
        spans[key] = []
      else:
        spans[key].append(token)
    for token in inputs[:-1]:
      rebuilt.extend(spans[token] if token in spans else [token])
    assert rebuilt == stream[568 * i:568 * (i + 1)]


def test_c4_prefix_lm_is_prefix_and_continuation(metadata_dir):
  with _mock(metadata_dir, num_examples=3):
    documents = _source_examples("c4_prefix_lm", "train")
    examples = _task_examples("c4_prefix_lm", "train")
  assert len(examples) == 3
  for document, example in zip(documents, examples):
    tokens = vocab.VOCABULARY.tokenizer.EncodeAsIds(document["text"].decode())
    inputs, targets = example["inputs"].tolist(), example["targets"].tolist()
    assert inputs[-1] == EOS and targets[-1] == EOS
    assert inputs[:-1] + targets[:-1] == tokens[:511]


def test_c4_source_names_the_paper_era_release():
  for name in ("c4_span_corruption", "c4_prefix_lm"):
    assert seqio.get_mixture_or_task(name).source.tfds_dataset.name == (
        c4.TFDS_NAME)


# ------------------------------------------------------------ SuperGLUE

# Benchmark prefix T5 writes in front of each task's inputs.
_PREFIX = {"boolq": "boolq", "cb": "cb", "copa": "copa", "multirc": "multirc",
           "record": "record", "rte": "rte", "wic": "wic", "axb": "rte",
           "axg": "rte"}


@pytest.mark.parametrize("config_name", ["boolq", "cb", "copa", "rte", "wic",
                                         "axb", "axg", "multirc"])
def test_classification_tasks_write_the_class_name_as_target(metadata_dir,
                                                             config_name):
  name = superglue.GLUE_STYLE_TASKS[config_name]
  split = "test" if config_name in superglue.DIAGNOSTIC_CONFIGS else "train"
  with _mock(metadata_dir, num_examples=12):
    assert list(seqio.get_mixture_or_task(name).splits) == (
        ["test"] if split == "test" else ["train", "validation", "test"])
    sources = _source_examples(name, split)
    examples = _task_examples(name, split)
  classes = list(superglue.BUILDER_CONFIGS[config_name].label_classes)
  assert len(examples) == len(sources) == 12
  # Every class occurs, each written as its own label text.
  assert {e["targets_pretokenized"].decode() for e in examples} == set(classes)
  for source, example in zip(sources, examples):
    assert example["targets_pretokenized"].decode() == classes[
        source["label"]]
    inputs = example["inputs_pretokenized"].decode()
    assert inputs.startswith(_PREFIX[config_name] + " ")
    assert len(example["inputs"]) <= 512 and example["inputs"][-1] == EOS
  if config_name == "axb":  # Cast as RTE: sentence1 is the premise.
    text = sources[0]["sentence1"].decode()
    assert f"premise: {text}" in examples[0]["inputs_pretokenized"].decode()


def test_record_makes_one_example_per_answer(metadata_dir):
  with _mock(metadata_dir, num_examples=2):
    sources = _source_examples("super_glue_record", "train")
    examples = _task_examples("super_glue_record", "train")
  answers = [a.decode() for s in sources for a in s["answers"]]
  assert [e["targets_pretokenized"].decode() for e in examples] == answers
  assert all(e["inputs_pretokenized"].decode().startswith("record query: ")
             for e in examples)


def test_wsc_simple_train_keeps_correct_referents_only(metadata_dir):
  # Random text cannot hold a pronoun at span2_index, so the mocked builder
  # yields real WSC rows (the shipped copy, in the builder's feature spec).
  rows = superglue_rows.read_examples(
      "wsc.fixed", readers.split_file(paths.SUPERGLUE_DIR, "WSC", "train"))

  def as_dataset(self, split, **kwargs):
    del self, split, kwargs
    return superglue_rows.to_dataset(rows)

  with mocking.mock_data(policy=mocking.MockPolicy.USE_FILES,
                         data_dir=metadata_dir, as_dataset_fn=as_dataset):
    examples = _task_examples(superglue.WSC_TRAIN_TASK, "train")
  positives = [r for r in rows if r["label"] == 1]
  assert len(examples) == len(positives) > 0
  for row, example in zip(positives, examples):
    assert example["inputs_pretokenized"].decode().startswith("wsc: ")
    assert f"*{row['span2_text']}*" in example["inputs_pretokenized"].decode()
    assert example["targets_pretokenized"].decode() == row["span1_text"]


def test_dpr_simple_is_formatted_as_wsc(metadata_dir):
  with _mock(metadata_dir, num_examples=3):
    sources = _source_examples(superglue.DPR_TASK, "train")
    examples = _task_examples(superglue.DPR_TASK, "train")
  for source, example in zip(sources, examples):
    assert example["inputs_pretokenized"].decode().startswith("wsc: ")
    assert example["targets_pretokenized"] == source["candidates"][
        source["label"]]


@pytest.mark.parametrize("local_name,config_name", [
    ("local_super_glue_boolq", "boolq"), ("local_super_glue_cb", "cb"),
    ("local_super_glue_copa", "copa"), ("local_super_glue_rte", "rte"),
    (local_superglue.WSC_EVAL_TASK, "wsc.fixed")])
def test_local_source_yields_what_the_tfds_source_yields(metadata_dir,
                                                         local_name,
                                                         config_name):
  local = seqio.get_mixture_or_task(local_name).source.get_dataset(
      "validation", shuffle=False)
  with _mock(metadata_dir, num_examples=1):
    tfds_source = seqio.TfdsDataSource(
        tfds_name=f"super_glue/{config_name}:{superglue.TFDS_VERSION}")
    expected = tfds_source.get_dataset("validation", shuffle=False)
    assert local.element_spec == expected.element_spec


# ------------------------------------------------------ metrics, mixture


def _score(task_name, targets, predictions, examples):
  return superglue_testing.score(task_name, examples, predictions, targets)


def test_multirc_scores_f1_over_all_answers_and_exact_match_per_question():
  # Two questions: q1 has answers (True, False), q2 has (True, True).
  examples = [{"idx/question": q} for q in (1, 1, 2, 2)]
  scores = _score("super_glue_multirc", ["True", "False", "True", "True"],
                  ["True", "True", "True", "True"], examples)
  # F1a over the 4 answers: tp=3, fp=1, fn=0 -> 6/7; EM: q2 only -> 50%.
  assert scores["f1"] == pytest.approx(100 * 6 / 7)
  assert scores["exact_match"] == pytest.approx(50.0)


def test_record_scores_best_f1_and_em_over_all_answers():
  examples = [{"answers": [b"Barack Obama", b"Obama"], "idx/passage": 0,
               "idx/query": 0},
              {"answers": [b"Paris"], "idx/passage": 1, "idx/query": 0}]
  scores = _score("super_glue_record", ["", ""], ["obama", "London"],
                  examples)
  assert scores == {"em": pytest.approx(50.0), "f1": pytest.approx(50.0)}


def test_cb_uses_macro_f1_and_accuracy():
  names = ["entailment", "contradiction", "neutral"]
  targets = names * 2
  predictions = names + ["entailment", "entailment", "neutral"]
  scores = _score("super_glue_cb", targets, predictions, [{}] * 6)
  # Per class F1: entailment 4/5, contradiction 2/3, neutral 1.
  assert scores["mean_3class_f1"] == pytest.approx(100 * (4 / 5 + 2 / 3 + 1)
                                                   / 3)
  assert scores["accuracy"] == pytest.approx(100 * 5 / 6)


def test_wsc_eval_scores_the_predicted_referent():
  examples = [{"label": 1, "targets_pretokenized": b"the dog"},
              {"label": 0, "targets_pretokenized": b"Anna"}]
  # Right: "dog" is the referent (label 1). Wrong: "anna" is named as the
  # referent where it is not (label 0).
  scores = _score(superglue.WSC_EVAL_TASK, [None, None], ["dog", "anna"],
                  examples)
  assert scores == {"accuracy": 50.0}


def test_proportional_mixture_matches_t5_weights():
  mixture = seqio.get_mixture_or_task(superglue.MIXTURE)
  rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
  t5_weights = glue_utils.get_super_glue_weight_mapping()
  assert sorted(rates.values()) == sorted(t5_weights.values())
  for ours, t5_name in superglue.T5_TASK_NAMES.items():
    assert rates[ours] == t5_weights[t5_name]
  # All eight SuperGLUE tasks are in it (WSC as its simple train/eval pair).
  assert {"super_glue_boolq", "super_glue_cb", "super_glue_copa",
          "super_glue_multirc", "super_glue_record", "super_glue_rte",
          "super_glue_wic", superglue.WSC_TRAIN_TASK} <= set(rates)
  assert rates["super_glue_record"] == 138_854 and np.isclose(
      rates["super_glue_boolq"], 9_427)


def test_t5_vocabulary_is_the_papers_with_100_sentinels(monkeypatch):
  monkeypatch.setenv(vocab.VOCABULARY_ENV_VAR, "t5")
  assert vocab.VOCABULARY.sentencepiece_model_file == (
      "gs://t5-data/vocabs/cc_all.32000/sentencepiece.model")
  assert vocab.VOCABULARY.extra_ids == 100
  # Every task, TFDS or local, shares the one selectable vocabulary.
  for name in ("c4_span_corruption", "super_glue_boolq",
               "local_super_glue_boolq", "wiki_span_corruption"):
    features = seqio.get_mixture_or_task(name).output_features
    assert features["targets"].vocabulary is vocab.VOCABULARY
    assert features["inputs"].vocabulary is vocab.VOCABULARY
    assert features["targets"].add_eos and features["inputs"].add_eos
