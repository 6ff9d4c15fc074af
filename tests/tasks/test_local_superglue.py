"""MultiRC, ReCoRD, WiC, AX-b, AX-g and every test split, against TFDS.

The fixtures (testdata/superglue) are small hand-written files in the
official layout, covering every field and label, unlabelled test rows,
duplicate ReCoRD entities and answers, and MultiRC's HTML markup. The
reference is TFDS itself: its `super_glue` builder generates examples from
the same files (tfds_reference.generated_dataset), and the TFDS tasks read
them through `tfds.testing.mock_data`.
"""

import collections
import json
import math
import os
import shutil

import numpy as np
import pytest
import seqio
from t5.data import glue_utils
from tensorflow_datasets.testing import mocking

from switch_mtf.tasks import local_superglue
from switch_mtf.tasks import paths
from switch_mtf.tasks import readers
from switch_mtf.tasks import superglue
from switch_mtf.tasks import superglue_rows
from tests.tasks import superglue_testing
from tests.tasks import tfds_reference

FIXTURES = superglue_testing.FIXTURES
LENGTH = {"inputs": 512, "targets": 114}
# TFDS config -> (local task, TFDS task, folder).
TASKS = {config: (name, superglue.GLUE_STYLE_TASKS[config], task_dir)
         for name, (config, task_dir)
         in local_superglue.GLUE_STYLE_TASKS.items()}
TASKS[superglue.WSC_CONFIG] = (local_superglue.WSC_EVAL_TASK,
                               superglue.WSC_EVAL_TASK, local_superglue.WSC_DIR)
NEW_CONFIGS = ("axb", "axg", "multirc", "record", "wic")
SPLIT_STEMS = {"train": "train", "validation": "val", "test": "test"}


def _fixture_file(config_name, split):
  task_dir = TASKS[config_name][2]
  stem = task_dir if task_dir in local_superglue.DIAGNOSTIC_DIRS else (
      SPLIT_STEMS[split])
  return os.path.join(FIXTURES, task_dir, stem + ".jsonl")


# Every split of the new tasks; the (unlabelled) test split of the others.
CASES = [(config, split) for config in NEW_CONFIGS
         for split in (("test",) if config in superglue.DIAGNOSTIC_CONFIGS
                       else ("train", "validation", "test"))] + [
                           (config, "test") for config in TASKS
                           if config not in NEW_CONFIGS]


_fixture_folder = pytest.fixture(autouse=True)(
    superglue_testing.fixture_folder)


@pytest.fixture(scope="module", name="tfds_dir")
def fixture_tfds_dir(tmp_path_factory):
  return tfds_reference.write_prepared_metadata(
      str(tmp_path_factory.mktemp("tfds")))


def _tfds_generated(config_name, split, tfds_dir):
  return tfds_reference.GeneratedExamples(
      config_name, _fixture_file(config_name, split), split,
      os.path.join(tfds_dir, "unused"))


def _plain(value):
  """Nested numpy values as plain Python, for exact comparison."""
  if isinstance(value, dict):
    return {key: _plain(v) for key, v in value.items()}
  if isinstance(value, np.ndarray):
    return [_plain(v) for v in value.tolist()]
  if isinstance(value, np.generic):
    return value.item()
  return value


def _list(dataset):
  return [_plain(example) for example in dataset.as_numpy_iterator()]


def _tfds_task_examples(config_name, split, tfds_dir):
  """The TFDS task's examples when TFDS serves the fixture file."""
  generated = _tfds_generated(config_name, split, tfds_dir)

  def as_dataset(builder, split, **kwargs):
    del builder, split, kwargs
    return generated.dataset()

  with mocking.mock_data(policy=mocking.MockPolicy.USE_FILES,
                         data_dir=tfds_dir, as_dataset_fn=as_dataset):
    task = seqio.get_mixture_or_task(TASKS[config_name][1])
    return tuple(task.get_dataset(LENGTH, split=split, shuffle=False)
                 .as_numpy_iterator())


def _local_task_examples(config_name, split):
  task = seqio.get_mixture_or_task(TASKS[config_name][0])
  return tuple(task.get_dataset(LENGTH, split=split, shuffle=False)
               .as_numpy_iterator())


# ------------------------------------------------------ same as TFDS


@pytest.mark.parametrize("config_name,split", CASES)
def test_local_source_yields_what_tfds_generates(config_name, split,
                                                 tfds_dir):
  local = seqio.get_mixture_or_task(TASKS[config_name][0]).source
  local_dataset = local.get_dataset(split, shuffle=False)
  expected = _tfds_generated(config_name, split, tfds_dir).dataset()
  assert local_dataset.element_spec == expected.element_spec
  assert _list(local_dataset) == _list(expected)
  if split == "test" and config_name not in superglue.DIAGNOSTIC_CONFIGS:
    # Unlabelled, as TFDS gives them (ReCoRD: no answers).
    assert all(e.get("label", -1) == -1 and not e.get("answers")
               for e in _list(local_dataset))
  else:
    assert all(e.get("label", 0) >= 0 and e.get("answers", [""])
               for e in _list(local_dataset))


@pytest.mark.parametrize("config_name,split", CASES)
def test_local_task_yields_what_the_tfds_task_yields(config_name, split,
                                                     tfds_dir):
  expected = [_plain(e) for e in _tfds_task_examples(config_name, split,
                                                     tfds_dir)]
  local = [_plain(e) for e in _local_task_examples(config_name, split)]
  assert local == expected
  assert local and all(e["inputs"][-1] == 1 for e in local)


# T5's formats written out for the first example of each fixture (the
# T5 preprocessors are the same in both tasks; this pins what they do).
_FIRST_EXAMPLE = {
    ("multirc", "validation"): (
        "multirc question: Where was Rex found? answer: At the park "
        "paragraph: Sent 1: Tom's dog, Rex, ran away. Sent 2: Tom found Rex "
        "at the park. ", "True"),
    ("record", "train"): (
        "record query: @placeholder spoke to students in Paris. entities: "
        "Barack Obama, France, Obama, Paris passage: Barack Obama visited "
        "Paris on Monday. Obama met students in Paris. Obama tours France. "
        "Students greet the president", "Barack Obama"),
    ("record", "test"): (
        "record query: @placeholder scored two goals. entities: Barcelona, "
        "Lionel Messi, Messi passage: Lionel Messi scored twice for "
        "Barcelona. Messi shines", "<unk>"),
    ("wic", "train"): (
        "wic sentence1: She sat on the bank of the river. sentence2: He "
        "deposited cash at the bank. word: bank", "False"),
    ("axb", "test"): (
        "rte hypothesis: A cat sat on a mat. premise: The cat sat on the "
        "mat.", "entailment"),
    ("axg", "test"): (
        "rte hypothesis: The accountant sought help filing taxes. premise: "
        "The taxpayer met with the accountant to get help filing his taxes.",
        "not_entailment"),
}


@pytest.mark.parametrize("case", sorted(_FIRST_EXAMPLE))
def test_t5_text_format(case):
  example = _local_task_examples(*case)[0]
  assert (example["inputs_pretokenized"].decode(),
          example["targets_pretokenized"].decode()) == _FIRST_EXAMPLE[case]


def test_record_trains_on_every_distinct_answer():
  # ReCoRD train: query 0 answers "Barack Obama" and "Obama" (at 4 spans),
  # query 1 "Paris" (2 spans), query 2 "Serena Williams", "Williams".
  targets = [e["targets_pretokenized"].decode()
             for e in _local_task_examples("record", "train")]
  assert targets == ["Barack Obama", "Obama", "Paris", "Serena Williams",
                     "Williams"]


# ------------------------------------------------------------ metrics


def _score(task_name, examples, predictions):
  return {name: float(value) for name, value in
          superglue_testing.score(task_name, examples, predictions).items()}


def _gold(examples):
  return [e["targets_pretokenized"].decode() for e in examples]


# (config, split) -> (predictions, expected scores from the definitions).
_PREDICTIONS = {
    # Question 0: answers (True, False, True), predicted all True; question
    # 1: (True, False) right. F1 over answers: tp 3, fp 1, fn 0. Exact
    # match per question: 1 of 2.
    ("multirc", "validation"): (
        ["True", "True", "True", "True", "False"],
        {"f1": 100 * 2 * 3 / (2 * 3 + 1 + 0), "exact_match": 50.0}),
    # One prediction per query (its answers are examples repeated): "obama"
    # matches after normalisation, "London" misses, "Serena" scores token F1
    # 2/3 against "Serena Williams" (0 against "Williams").
    ("record", "train"): (
        ["obama", "obama", "London", "Serena", "Serena"],
        {"em": 100 / 3, "f1": 100 * (1 + 0 + 2 / 3) / 3}),
    # Gold (False, True, True); "yes" is no label.
    ("wic", "train"): (["False", "yes", "True"], {"accuracy": 200 / 3}),
    # Gold (ent, not, ent, not) with not_entailment as class 1: tp 1, tn 2,
    # fp 0, fn 1.
    ("axb", "test"): (
        ["entailment", "entailment", "entailment", "not_entailment"],
        {"matthews_corrcoef": 100 * (1 * 2 - 0 * 1) / math.sqrt(
            (1 + 0) * (1 + 1) * (2 + 0) * (2 + 1))}),
    # Gold (not, not, ent, ent): pair 0 agrees, pair 1 does not.
    ("axg", "test"): (
        ["not_entailment", "not_entailment", "entailment", "not_entailment"],
        {"accuracy": 75.0, "gender_parity": 50.0}),
}


@pytest.mark.parametrize("case", sorted(_PREDICTIONS))
def test_metrics_match_tfds_and_their_definitions(case, tfds_dir):
  config_name, split = case
  predictions, expected = _PREDICTIONS[case]
  local = _local_task_examples(*case)
  from_tfds = _tfds_task_examples(config_name, split, tfds_dir)
  local_scores = _score(TASKS[config_name][0], local, predictions)
  assert local_scores == _score(TASKS[config_name][1], from_tfds,
                                predictions)
  assert local_scores == pytest.approx(expected)
  # The gold labels as predictions score 100 on every metric.
  gold = _score(TASKS[config_name][0], local, _gold(local))
  assert gold == {name: 100.0 for name in expected}


# ------------------------------------------------------------ mixture


def test_all_tasks_mixture_has_t5_weights_and_reads_nothing(monkeypatch,
                                                            tmp_path):
  monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, str(tmp_path / "none"))
  mixture = seqio.get_mixture_or_task(local_superglue.ALL_TASKS_MIXTURE)
  rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
  t5_weights = glue_utils.get_super_glue_weight_mapping()
  assert rates == {
      "local_super_glue_boolq": t5_weights["super_glue_boolq_v102"],
      "local_super_glue_cb": t5_weights["super_glue_cb_v102"],
      "local_super_glue_copa": t5_weights["super_glue_copa_v102"],
      "local_super_glue_multirc": t5_weights["super_glue_multirc_v102"],
      "local_super_glue_record": t5_weights["super_glue_record_v102"],
      "local_super_glue_rte": t5_weights["super_glue_rte_v102"],
      "local_super_glue_wic": t5_weights["super_glue_wic_v102"],
      local_superglue.WSC_TRAIN_TASK:
          t5_weights["super_glue_wsc_v102_simple_train"],
      local_superglue.WSC_EVAL_TASK: 0.0,
      "local_super_glue_axb": 0.0,
      "local_super_glue_axg": 0.0,
  }
  # T5's mixture without DPR, which is no SuperGLUE file.
  tfds_mixture = seqio.get_mixture_or_task(superglue.MIXTURE)
  tfds_rates = {t.name: tfds_mixture.get_rate(t) for t in tfds_mixture.tasks}
  del tfds_rates[superglue.DPR_TASK]
  assert {"local_" + name: rate for name, rate in tfds_rates.items()} == rates


def test_all_tasks_mixture_trains_on_every_task_with_weight(monkeypatch,
                                                             tmp_path):
  # The shipped train files and the fixtures' make a folder with every
  # train split; the test-only diagnostics and WSC-eval are left out.
  for task_dir in ("BoolQ", "CB", "COPA", "RTE", "WSC"):
    shutil.copytree(os.path.join(paths.SUPERGLUE_DIR, task_dir),
                    tmp_path / task_dir)
  for task_dir in ("MultiRC", "ReCoRD", "WiC"):
    shutil.copytree(os.path.join(FIXTURES, task_dir), tmp_path / task_dir)
  monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, str(tmp_path))
  mixture = seqio.get_mixture_or_task(local_superglue.ALL_TASKS_MIXTURE)
  dataset = mixture.get_dataset(LENGTH, split="train", shuffle=True, seed=1,
                                copy_pretokenized=True)
  prefixes = collections.Counter(
      e["inputs_pretokenized"].split(b" ")[0].decode()
      for e in dataset.take(200).as_numpy_iterator())
  assert set(prefixes) <= {"boolq", "cb", "copa", "multirc", "record", "rte",
                           "wic", "wsc:"}
  # ReCoRD has 75% of T5's weight, MultiRC 15%.
  assert prefixes.most_common(2)[0][0] == "record"
  assert prefixes["multirc"] > 0


# ------------------------------------------------- missing files, bad rows


def test_missing_files_fail_naming_the_file_only_when_used(monkeypatch):
  monkeypatch.delenv(readers.SUPERGLUE_DIR_ENV_VAR)  # The shipped folder.
  cases = [("local_super_glue_multirc", "train", "MultiRC/train.jsonl"),
           ("local_super_glue_record", "validation", "ReCoRD/val.jsonl"),
           ("local_super_glue_cb", "test", "CB/test.jsonl"),
           (local_superglue.WSC_EVAL_TASK, "test", "WSC/test.jsonl"),
           ("local_super_glue_axb", "test", "AX-b/AX-b.jsonl"),
           ("local_super_glue_axg", "test", "AX-g/AX-g.jsonl")]
  for name, split, missing in cases:
    with pytest.raises(FileNotFoundError,
                       match=rf"/{missing} \(or .jsonl.gz\) not found"):
      seqio.get_mixture_or_task(name).get_dataset(LENGTH, split=split)
  # The shipped tasks are untouched by the missing ones.
  cb = seqio.get_mixture_or_task("local_super_glue_cb").get_dataset(
      LENGTH, split="validation", shuffle=False)
  assert len(list(cb.as_numpy_iterator())) == 56


def test_splits_follow_t5():
  splits = {name: tuple(seqio.get_mixture_or_task(name).splits)
            for name in list(local_superglue.GLUE_STYLE_TASKS) + [
                local_superglue.WSC_TRAIN_TASK,
                local_superglue.WSC_EVAL_TASK]}
  for name, (config, _) in local_superglue.GLUE_STYLE_TASKS.items():
    assert splits[name] == (
        ("test",) if config in superglue.DIAGNOSTIC_CONFIGS else
        ("train", "validation", "test"))
  assert splits[local_superglue.WSC_TRAIN_TASK] == ("train",)
  assert splits[local_superglue.WSC_EVAL_TASK] == ("validation", "test")


def _rows_file(tmp_path, rows):
  path = str(tmp_path / "rows.jsonl")
  with open(path, "w") as f:
    f.write("".join(json.dumps(row) + "\n" for row in rows))
  return path


def _fixture_rows(config_name, split):
  with open(_fixture_file(config_name, split)) as f:
    return [json.loads(line) for line in f]


def _multirc_answer_without_label(row):
  del row["passage"]["questions"][0]["answers"][1]["label"]


def _multirc_label_two(row):
  row["passage"]["questions"][0]["answers"][0]["label"] = 2


def _multirc_question_idx_text(row):
  row["passage"]["questions"][0]["idx"] = "3"


def _multirc_passage_text(row):
  row["passage"] = "Ann baked bread."


def _record_entity_past_the_text(row):
  row["passage"]["entities"][-1]["end"] = len(row["passage"]["text"])


def _record_query_without_answers(row):
  del row["qas"][0]["answers"]


def _record_answer_text_number(row):
  row["qas"][0]["answers"][0]["text"] = 7


def _wic_start_text(row):
  row["start1"] = "5"


def _wic_no_label(row):
  del row["label"]


# (config, split of the fixture, mutation of its second row, error).
_BAD_ROWS = [
    ("multirc", "train", _multirc_answer_without_label,
     r"`passage.questions\[0\].answers\[1\]` lacks field\(s\) \['label'\]"),
    ("multirc", "train", _multirc_label_two,
     r"passage.questions\[0\].answers\[0\]: invalid label 2 for multirc"),
    ("multirc", "train", _multirc_question_idx_text,
     r"field 'passage.questions\[0\].idx' must be int, got '3'"),
    ("multirc", "train", _multirc_passage_text,
     r"`passage` must be an object"),
    ("record", "train", _record_entity_past_the_text,
     r"passage.entities\[6\] spans characters 97\.\.105 \(inclusive\), "
     r"outside the passage text of 105 characters"),
    ("record", "train", _record_query_without_answers,
     r"`qas\[0\]` lacks field\(s\) \['answers'\]"),
    ("record", "train", _record_answer_text_number,
     r"field 'qas\[0\].answers\[0\].text' must be str"),
    ("wic", "train", _wic_start_text, r"field 'start1' must be int"),
    ("wic", "train", _wic_no_label, r"row lacks field\(s\) \['label'\]"),
]


@pytest.mark.parametrize("config_name,split,mutate,message", _BAD_ROWS,
                         ids=[case[2].__name__ for case in _BAD_ROWS])
def test_bad_rows_name_file_and_line(tmp_path, config_name, split, mutate,
                                     message):
  rows = _fixture_rows(config_name, split)
  if len(rows) == 1:
    rows = rows * 2
  mutate(rows[1])
  path = _rows_file(tmp_path, rows)
  with pytest.raises(ValueError, match=rf"{path}:2: .*{message}"):
    superglue_rows.read_examples(config_name, path)


def test_test_split_rows_need_no_labels_and_keep_given_ones(tmp_path):
  rows = _fixture_rows("wic", "train")
  del rows[0]["label"]
  path = _rows_file(tmp_path, rows)
  examples = superglue_rows.read_examples("wic", path, labels_required=False)
  assert [e["label"] for e in examples] == [-1, 1, 1]
  record = _fixture_rows("record", "train")
  del record[0]["qas"][0]["answers"]
  examples = superglue_rows.read_examples(
      "record", _rows_file(tmp_path, record), labels_required=False)
  assert [e["answers"] for e in examples] == [
      [], ["Paris"], ["Serena Williams", "Williams"]]


def test_axg_rows_must_pair_up(tmp_path):
  rows = _fixture_rows("axg", "test")
  unpaired = _rows_file(tmp_path, rows[:3])
  with pytest.raises(ValueError, match=rf"{unpaired}:3: AX-g row idx 2 has "
                     r"no partner \(idx 3\)"):
    superglue_rows.read_examples("axg", unpaired, labels_required=False)
  rows[1]["hypothesis"] = "The taxpayer sought help."
  different = _rows_file(tmp_path, rows)
  with pytest.raises(ValueError, match=rf"{different}:1: AX-g row idx 0 and "
                     r"its partner idx 1 \(line 2\) have different"):
    superglue_rows.read_examples("axg", different, labels_required=False)


def test_passages_without_questions_are_an_error(tmp_path):
  row = _fixture_rows("multirc", "validation")[0]
  row["passage"]["questions"] = []
  path = _rows_file(tmp_path, [row])
  with pytest.raises(ValueError, match=rf"{path} yields no examples"):
    superglue_rows.read_examples("multirc", path)
