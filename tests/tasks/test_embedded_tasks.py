"""The embedded (offline) tasks end to end through seqio, on shipped data."""

import functools
import gzip
import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import seqio
from sklearn import metrics as sk_metrics

from switch_mtf.tasks import denoising
from switch_mtf.tasks import local_superglue
from switch_mtf.tasks import paths
from switch_mtf.tasks import preview
from switch_mtf.tasks import readers
from switch_mtf.tasks import registry
from switch_mtf.tasks import vocab
from switch_mtf.tasks import wiki
from tests.tasks import superglue_testing

SENTINEL_0 = vocab.VOCABULARY.vocab_size - 1  # <extra_id_0>
EOS = 1


@pytest.fixture(autouse=True)
def _clean_gin(monkeypatch):
  monkeypatch.delenv(readers.SUPERGLUE_DIR_ENV_VAR, raising=False)
  monkeypatch.delenv(vocab.VOCABULARY_ENV_VAR, raising=False)
  gin.clear_config()
  yield
  gin.clear_config()


def _examples(task_name, split, length=None, limit=None):
  dataset = seqio.get_mixture_or_task(task_name).get_dataset(
      length or denoising.SEQUENCE_LENGTH, split=split, shuffle=False)
  if limit:
    dataset = dataset.take(limit)
  return list(dataset.as_numpy_iterator())


def _raw_rows(task_dir, split_file):
  path = os.path.join(paths.SUPERGLUE_DIR, task_dir, split_file + ".jsonl.gz")
  with gzip.open(path, "rt", encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _wiki_documents(split):
  path = os.path.join(paths.WIKI_DIR, wiki.SPLIT_FILES[split])
  with gzip.open(path, "rt", encoding="utf-8") as f:
    return ["\n".join(line.rstrip("\n").split("\t")[2:]) for line in f]


def _uncorrupt(inputs, targets):
  """Puts each target span back in place of its sentinel in the inputs."""
  spans, current = {}, None
  for token in targets:
    if token > SENTINEL_0 - 100:
      current = token
      spans[current] = []
    else:
      spans[current].append(token)
  tokens = []
  for token in inputs:
    tokens.extend(spans.pop(token) if token in spans else [token])
  assert not spans, "target spans without a sentinel in the inputs"
  return tokens


# ------------------------------------------------------------ pretraining


def test_wiki_span_corruption_is_t5_span_corruption_of_the_corpus():
  examples = _examples("wiki_span_corruption", "validation", limit=4)
  # Independent reference: the corpus documents, tokenized and concatenated
  # (span corruption packs documents into 568-token chunks: 512/114 with EOS).
  encode = vocab.VOCABULARY.tokenizer.EncodeAsIds
  stream = [t for doc in _wiki_documents("validation")[:128]
            for t in encode(doc)]
  for i, example in enumerate(examples):
    inputs, targets = example["inputs"].tolist(), example["targets"].tolist()
    assert len(inputs) == 512 and len(targets) == 114
    assert inputs[-1] == EOS and targets[-1] == EOS
    sentinels_in = [t for t in inputs if t > SENTINEL_0 - 100]
    sentinels_out = [t for t in targets if t > SENTINEL_0 - 100]
    # Spans are numbered <extra_id_0>, <extra_id_1>, ... in both sequences.
    assert sentinels_in == list(range(SENTINEL_0, SENTINEL_0 - len(
        sentinels_in), -1))
    assert sentinels_out == sentinels_in and targets[0] == SENTINEL_0
    noise = len(targets) - 1 - len(sentinels_out)
    assert noise == round(568 * denoising.NOISE_DENSITY)
    assert len(sentinels_in) == round(noise / denoising.MEAN_NOISE_SPAN_LENGTH)
    assert _uncorrupt(inputs[:-1], targets[:-1]) == stream[568 * i:568 *
                                                           (i + 1)]


def test_wiki_prefix_lm_splits_a_document_into_prefix_and_continuation():
  (example,) = _examples("wiki_prefix_lm", "validation", limit=1)
  first_doc = vocab.VOCABULARY.tokenizer.EncodeAsIds(
      _wiki_documents("validation")[0])
  inputs, targets = example["inputs"].tolist(), example["targets"].tolist()
  assert inputs[-1] == EOS and targets[-1] == EOS
  assert inputs[:-1] and targets[:-1]
  assert inputs[:-1] + targets[:-1] == first_doc[:511]



@pytest.mark.parametrize("bad_line", [
    "\tSome title\tA paragraph.",  # no page id
    "123\t\tA paragraph.",  # no title
    "123\tSome title",  # no text
    "Some title\tA paragraph.\tAnother.",  # title where the id goes
    "just text",
])
def test_wiki_corpus_line_without_id_or_title_fails_with_file_and_line(
    tmp_path, bad_line):
  good = "42\tA title\tFirst paragraph.\tSecond paragraph."
  path = str(tmp_path / wiki.SPLIT_FILES["validation"])
  with gzip.open(path, "wt", encoding="utf-8") as f:
    f.write("\n".join([good, good, bad_line, good]) + "\n")
  with pytest.raises(ValueError, match=r"%s:3: not a corpus article line"
                     % path):
    wiki.corpus_file("validation", corpus_dir=str(tmp_path))
  with gzip.open(path, "wt", encoding="utf-8") as f:
    f.write("\n".join([good, "", good]) + "\n")
  assert wiki.corpus_file("validation", corpus_dir=str(tmp_path)) == path


# ------------------------------------------------------------ SuperGLUE

# T5's published text formats (glue preprocessor: benchmark name, then the
# features as "key: value" sorted by key), written out independently.
_FORMATS = {
    "local_super_glue_boolq": (
        "BoolQ", lambda r: f"boolq passage: {r['passage']} question: "
        f"{r['question']}", lambda r: str(r["label"])),
    "local_super_glue_cb": (
        "CB", lambda r: f"cb hypothesis: {r['hypothesis']} premise: "
        f"{r['premise']}", lambda r: r["label"]),
    "local_super_glue_copa": (
        "COPA", lambda r: f"copa choice1: {r['choice1']} choice2: "
        f"{r['choice2']} premise: {r['premise']} question: {r['question']}",
        lambda r: f"choice{r['label'] + 1}"),
    "local_super_glue_rte": (
        "RTE", lambda r: f"rte hypothesis: {r['hypothesis']} premise: "
        f"{r['premise']}", lambda r: r["label"]),
}


@functools.lru_cache(maxsize=None)
def _validation(task_name):
  return tuple(_examples(task_name, "validation"))


@pytest.mark.parametrize("task_name", sorted(_FORMATS))
def test_local_glue_style_tasks_use_t5_text_and_label_per_row(task_name):
  task_dir, inputs_of, target_of = _FORMATS[task_name]
  rows = _raw_rows(task_dir, "val")
  examples = _validation(task_name)
  assert len(examples) == len(rows)
  for row, example in zip(rows, examples):
    assert example["inputs_pretokenized"].decode() == inputs_of(row)
    assert example["targets_pretokenized"].decode() == target_of(row)
    assert example["idx"] == row["idx"]
    assert example["targets"][-1] == EOS
    assert len(example["inputs"]) <= 512
  # Every class shows up with its own label text.
  labels = {e["targets_pretokenized"].decode() for e in examples}
  assert labels == {target_of(r) for r in rows}


def test_local_wsc_simple_marks_the_pronoun_and_predicts_the_referent():
  rows = _raw_rows("WSC", "val")
  examples = _validation(local_superglue.WSC_EVAL_TASK)
  assert len(examples) == len(rows)
  for row, example in zip(rows, examples):
    marked = "*" + row["target"]["span2_text"] + "*"
    assert example["inputs_pretokenized"].decode().count(marked) == 1
    # The referent, case-matched to the text as TFDS's wsc.fixed repairs it.
    assert (example["targets_pretokenized"].decode().lower() ==
            row["target"]["span1_text"].rstrip(".").lower())
    assert example["inputs_pretokenized"].decode().startswith("wsc: ")
    assert example["label"] == int(row["label"])
  # The markers survive tokenization (the embedded vocabulary has "*").
  assert vocab.VOCABULARY.unk_id not in examples[0]["inputs"].tolist()
  train = _examples(local_superglue.WSC_TRAIN_TASK, "train")
  assert len(train) == sum(r["label"] for r in _raw_rows("WSC", "train"))
  assert all(e["label"] == 1 for e in train)


def test_local_cb_scores_with_macro_f1_and_accuracy():
  examples = _validation("local_super_glue_cb")
  truth = [e["targets_pretokenized"].decode() for e in examples]
  classes = ["entailment", "contradiction", "neutral"]
  rng = np.random.RandomState(0)
  predicted = [c if rng.rand() < 0.7 else classes[rng.randint(3)]
               for c in truth]
  scores = superglue_testing.score("local_super_glue_cb", examples, predicted)
  assert scores["mean_3class_f1"] == pytest.approx(100 * sk_metrics.f1_score(
      truth, predicted, average="macro"))
  assert scores["accuracy"] == pytest.approx(
      100 * np.mean([p == t for p, t in zip(predicted, truth)]))
  assert superglue_testing.score("local_super_glue_cb", examples, truth) == {
      "mean_3class_f1": 100.0, "accuracy": 100.0}


@pytest.mark.parametrize("task_name", ["local_super_glue_boolq",
                                       "local_super_glue_copa",
                                       "local_super_glue_rte"])
def test_local_accuracy_tasks_score_an_unknown_answer_as_wrong(task_name):
  examples = _validation(task_name)[:40]
  truth = [e["targets_pretokenized"].decode() for e in examples]
  predicted = truth[:30] + ["not a label"] * 10
  assert superglue_testing.score(task_name, examples, predicted) == {
      "accuracy": 75.0}


def test_local_wsc_eval_scores_a_correct_referent_by_the_label():
  # Predicting span1 everywhere is right exactly where span1 is the referent.
  examples = _validation(local_superglue.WSC_EVAL_TASK)
  predicted = [e["targets_pretokenized"].decode() for e in examples]
  positives = np.mean([r["label"] for r in _raw_rows("WSC", "val")])
  assert superglue_testing.score(local_superglue.WSC_EVAL_TASK, examples,
                predicted)["accuracy"] == pytest.approx(100 * positives)


def test_local_mixture_is_proportional_to_training_examples():
  mixture = seqio.get_mixture_or_task(local_superglue.MIXTURE)
  rates = {task.name: mixture.get_rate(task) for task in mixture.tasks}
  expected = {
      name: len(_raw_rows(local_superglue.GLUE_STYLE_TASKS[name][1], "train"))
      for name in local_superglue.SHIPPED_TASKS}
  expected[local_superglue.WSC_TRAIN_TASK] = sum(
      r["label"] for r in _raw_rows("WSC", "train"))
  expected[local_superglue.WSC_EVAL_TASK] = 0
  assert rates == expected


# ------------------------------------------------- data dir and bad input


def _write_cb(root, rows_by_file):
  for name, lines in rows_by_file.items():
    path = root / "CB" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


_CB_ROW = json.dumps({"premise": "It rains.", "hypothesis": "It is wet.",
                      "label": "entailment", "idx": 0})


@pytest.mark.parametrize("how", ["env", "gin"])
def test_data_dir_override_reads_any_official_layout(tmp_path, monkeypatch,
                                                     how):
  _write_cb(tmp_path, {"train.jsonl": [_CB_ROW] * 3,
                       "val.jsonl": [_CB_ROW]})
  if how == "env":
    monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, str(tmp_path))
  else:
    gin.bind_parameter("switch_mtf.tasks.local_superglue_dir.path",
                       str(tmp_path))
  (example,) = _examples("local_super_glue_cb", "validation")
  assert example["inputs_pretokenized"].decode() == (
      "cb hypothesis: It is wet. premise: It rains.")
  assert local_superglue.count_train_examples("cb", "CB") == 3


def test_malformed_row_fails_the_dataset_with_file_and_line(tmp_path,
                                                            monkeypatch):
  _write_cb(tmp_path, {"val.jsonl": [_CB_ROW, '{"premise": "p",']})
  monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, str(tmp_path))
  with pytest.raises(ValueError, match=rf"{tmp_path}/CB/val.jsonl:2: "
                     "malformed JSON"):
    _examples("local_super_glue_cb", "validation")


def test_missing_or_empty_data_dir_fails_instead_of_an_empty_dataset(
    tmp_path, monkeypatch):
  monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, str(tmp_path / "none"))
  with pytest.raises(FileNotFoundError, match=r"none does not exist"):
    _examples("local_super_glue_rte", "train")
  monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r"RTE/train.jsonl \(or"):
    _examples("local_super_glue_rte", "train")
  _write_cb(tmp_path, {"val.jsonl": []})
  with pytest.raises(ValueError, match=r"CB/val.jsonl is empty"):
    _examples("local_super_glue_cb", "validation")


# ---------------------------------------------------- preview and import


def test_preview_decodes_sentinels_and_labels():
  (cb,) = preview.preview("local_super_glue_cb", num_examples=1)
  assert cb["inputs"].startswith("cb hypothesis: ")
  assert cb["targets"] in ("entailment", "contradiction", "neutral")
  (span,) = preview.preview("wiki_span_corruption", num_examples=1,
                            sequence_length={"inputs": 64, "targets": 16})
  assert span["inputs"].count("<extra_id_") == span["targets"].count(
      "<extra_id_") > 0
  with pytest.raises(ValueError, match="is a mixture"):
    preview.preview(local_superglue.MIXTURE)
  with pytest.raises(ValueError, match="has no split 'validation'"):
    preview.preview(local_superglue.WSC_TRAIN_TASK, split="validation")


def test_every_local_task_is_listed_for_inspection():
  # The shipped ones: the others have no data until a folder is set.
  assert set(registry.LOCAL_TASKS) == (
      set(local_superglue.SHIPPED_TASKS) |
      {local_superglue.WSC_TRAIN_TASK, local_superglue.WSC_EVAL_TASK,
       "wiki_span_corruption", "wiki_prefix_lm"})


def test_import_registers_everything_without_reading_data(tmp_path):
  # Broken data and vocabulary settings cannot matter if nothing is read.
  script = (
      "import seqio, switch_mtf.tasks\n"
      "from seqio import utils\n"
      "loaded = seqio.SentencePieceVocabulary._load_model.cache_info()\n"
      "assert loaded.currsize == 0, loaded\n"
      "assert not utils.LazyTfdsLoader._MEMOIZED_BUILDERS\n"
      "names = set(seqio.TaskRegistry.names())\n"
      "assert {'smoke_span_corruption', 'wiki_span_corruption',\n"
      "        'c4_span_corruption'} <= names, names\n"
      "print('ok')\n")
  env = dict(os.environ, SWITCH_MTF_SUPERGLUE_DIR=str(tmp_path / "none"),
             SWITCH_MTF_VOCABULARY=str(tmp_path / "none.model"))
  result = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "ok"
