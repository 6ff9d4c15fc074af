"""Reading and validating local data: readers, SuperGLUE rows, wiki cleaning."""

import gzip
import json
import os

import gin
import pytest

from switch_mtf.tasks import paths
from switch_mtf.tasks import readers
from switch_mtf.tasks import registry
from switch_mtf.tasks import superglue_data
from switch_mtf.tasks import superglue_rows
from switch_mtf.tasks import vocab
from switch_mtf.tasks import wiki
from switch_mtf.tasks import wiki_corpus


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  return path


# ---------------------------------------------------------------- readers


def test_read_jsonl_returns_rows_with_line_numbers_skipping_blank_lines(
    tmp_path):
  path = _write(str(tmp_path / "CB" / "val.jsonl"),
                '{"a": 1}\n\n{"a": 2}\n')
  assert readers.read_jsonl(path) == [(1, {"a": 1}), (3, {"a": 2})]


def test_read_jsonl_reads_gzip(tmp_path):
  path = str(tmp_path / "x.jsonl.gz")
  with gzip.open(path, "wt", encoding="utf-8") as f:
    f.write('{"a": 1}\n')
  assert readers.read_jsonl(path) == [(1, {"a": 1})]


def test_malformed_row_names_file_and_line(tmp_path):
  path = _write(str(tmp_path / "bad.jsonl"), '{"a": 1}\n{"a": \n')
  with pytest.raises(ValueError, match=rf"{path}:2: malformed JSON"):
    readers.read_jsonl(path)


def test_non_object_row_names_file_and_line(tmp_path):
  path = _write(str(tmp_path / "bad.jsonl"), '{"a": 1}\n[1, 2]\n')
  with pytest.raises(ValueError, match=rf"{path}:2: expected a JSON object"):
    readers.read_jsonl(path)


def test_empty_file_is_an_error_not_an_empty_dataset(tmp_path):
  path = _write(str(tmp_path / "empty.jsonl"), "\n")
  with pytest.raises(ValueError, match=rf"{path} is empty"):
    readers.read_jsonl(path)


def test_missing_data_dir_names_dir_and_env_var(tmp_path):
  missing = str(tmp_path / "nope")
  with pytest.raises(FileNotFoundError,
                     match=rf"{missing} does not exist.*"
                     rf"{readers.SUPERGLUE_DIR_ENV_VAR}"):
    readers.split_file(missing, "CB", "train")


def test_missing_split_file_names_the_expected_path(tmp_path):
  _write(str(tmp_path / "CB" / "train.jsonl"), '{"a": 1}\n')
  with pytest.raises(FileNotFoundError,
                     match=rf"{tmp_path}/CB/val.jsonl \(or .jsonl.gz\)"):
    readers.split_file(str(tmp_path), "CB", "validation")


def test_split_file_prefers_plain_jsonl_and_accepts_gz(tmp_path):
  gz = _write(str(tmp_path / "RTE" / "val.jsonl.gz"), "")
  assert readers.split_file(str(tmp_path), "RTE", "validation") == gz
  plain = _write(str(tmp_path / "RTE" / "val.jsonl"), "")
  assert readers.split_file(str(tmp_path), "RTE", "validation") == plain


def test_unknown_split_is_rejected(tmp_path):
  with pytest.raises(ValueError, match="Unknown split 'test'"):
    readers.split_file(str(tmp_path), "CB", "test")


def test_superglue_dir_precedence_gin_over_env_over_shipped(monkeypatch):
  monkeypatch.delenv(readers.SUPERGLUE_DIR_ENV_VAR, raising=False)
  assert readers.local_superglue_dir() == paths.SUPERGLUE_DIR
  monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, "/from/env")
  assert readers.local_superglue_dir() == "/from/env"
  gin.bind_parameter("switch_mtf.tasks.local_superglue_dir.path", "/from/gin")
  assert readers.local_superglue_dir() == "/from/gin"


# ------------------------------------------------------- SuperGLUE rows


def test_rows_become_tfds_examples_with_class_ids():
  # Label ids follow TFDS's label_classes order, not the order of the file.
  cb = superglue_rows.to_example(
      "cb", {"premise": "p", "hypothesis": "h", "label": "neutral",
             "idx": 7}, "f", 1)
  assert cb == {"premise": "p", "hypothesis": "h", "idx": 7, "label": 2}
  boolq = superglue_rows.to_example(
      "boolq", {"question": "q", "passage": "p", "label": True, "idx": 0},
      "f", 1)
  assert boolq["label"] == 1  # ("False", "True")
  copa = superglue_rows.to_example(
      "copa", {"premise": "p", "choice1": "a", "choice2": "b",
               "question": "cause", "label": 0, "idx": 3}, "f", 1)
  assert copa["label"] == 0  # "choice1"
  rte = superglue_rows.to_example(
      "rte", {"premise": "p", "hypothesis": "h", "label": "not_entailment",
              "idx": 1}, "f", 1)
  assert rte["label"] == 1


def test_wsc_target_spans_are_lifted_and_repaired_as_tfds_wsc_fixed():
  row = {"text": "Mark told Pete many lies about himself .",
         "target": {"span1_index": 0, "span1_text": "Mark.",
                    "span2_index": 6, "span2_text": "himself"},
         "label": True, "idx": 5}
  example = superglue_rows.to_example("wsc.fixed", row, "f", 1)
  # "Mark." is not in the text; wsc.fixed strips the trailing period.
  assert example == {"text": row["text"], "span1_index": 0,
                     "span2_index": 6, "span1_text": "Mark",
                     "span2_text": "himself", "idx": 5, "label": 1}


@pytest.mark.parametrize("row,message", [
    ({"premise": "p", "label": "neutral", "idx": 1},
     r"f.jsonl:4: row lacks field\(s\) \['hypothesis'\]"),
    ({"premise": "p", "hypothesis": "h", "label": "maybe", "idx": 1},
     r"f.jsonl:4: invalid label 'maybe' for cb"),
    ({"premise": "p", "hypothesis": 3, "label": "neutral", "idx": 1},
     r"f.jsonl:4: field 'hypothesis' must be str"),
    ({"premise": "p", "hypothesis": "h", "label": "neutral", "idx": "1"},
     r"f.jsonl:4: `idx` must be an integer"),
])
def test_bad_rows_name_file_and_line(row, message):
  with pytest.raises(ValueError, match=message):
    superglue_rows.to_example("cb", row, "f.jsonl", 4)


def test_copa_label_must_be_zero_or_one():
  row = {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause",
         "label": True, "idx": 3}
  with pytest.raises(ValueError, match="COPA label must be 0 or 1"):
    superglue_rows.to_example("copa", row, "f", 1)


def test_shipped_boolq_split_is_disjoint_by_article_and_complete():
  train = readers.read_jsonl(
      readers.split_file(paths.SUPERGLUE_DIR, "BoolQ", "train"))
  val = readers.read_jsonl(
      readers.split_file(paths.SUPERGLUE_DIR, "BoolQ", "validation"))
  articles = lambda rows: {  # pylint: disable=g-long-lambda
      r["passage"].split(" -- ", 1)[0] for _, r in rows}
  assert not articles(train) & articles(val)
  # Together they are the 3,270 official validation rows, none lost.
  assert len(train) + len(val) == 3270
  assert len({r["idx"] for _, r in train + val}) == 3270
  assert 0.15 < len(val) / 3270 < 0.25


def test_boolq_article_split_keeps_questions_of_one_article_together():
  rows = [json.dumps({"passage": f"{title} -- text {i}", "idx": i}).encode()
          + b"\n" for i, title in enumerate(["A", "B", "A", "C", "B"] * 40)]
  train, val = superglue_data.split_boolq(b"".join(rows))
  train_titles = {json.loads(l)["passage"][0] for l in train.splitlines()}
  val_titles = {json.loads(l)["passage"][0] for l in val.splitlines()}
  assert not train_titles & val_titles
  assert len(train.splitlines()) + len(val.splitlines()) == 200


# ------------------------------------------------------- wiki cleaning


_RAW = ('<doc id="12" url="?curid=12" title="Tom &amp; Jerry">\n'
        "Tom &amp; Jerry\n\n"
        "Tom &amp; Jerry () is a cartoon.&lt;ref name=\"a\"&gt;x&lt;/ref&gt; "
        "It ran ( ; 1940) long.&lt;br&gt;\n"
        "&lt;mapframe zoom=\"3\"&gt;\n \"type\": \"Point\"\n"
        "&lt;/mapframe&gt;\n"
        "&lt;section begin=A /&gt;History.\n"
        "a &lt; b and c &gt; d.\n"
        "Cited.&lt;ref? \"Sketch Plan\", 1954.\n"
        "</doc>\n"
        '<doc id="13" url="?curid=13" title="Stub">\nStub\n\nShort.\n</doc>\n')


def test_clean_article_unescapes_strips_markup_and_drops_title_line():
  (page_id, title, body), _ = wiki_corpus.parse_docs(_RAW)
  article = wiki_corpus.clean_article(page_id, title, body)
  assert article.title == "Tom & Jerry"
  assert article.paragraphs == (
      "Tom & Jerry is a cartoon. x It ran (1940) long.",
      "History.",
      "a < b and c > d.",
      "Cited.",
  )


def test_clean_corpus_drops_stubs_and_splits_by_stable_page_hash():
  train, validation = wiki_corpus.clean_corpus([_RAW], min_body_bytes=20)
  kept = train + validation
  assert [a.page_id for a in kept] == ["12"]  # "Short." is a stub.
  assert (validation == kept) == wiki_corpus.is_validation("12")


def test_shipped_corpus_is_clean_and_split_by_article():
  ids = {}
  for split in ("train", "validation"):
    lines = wiki_corpus.read_corpus_lines(wiki.corpus_file(split))
    ids[split] = {line.split("\t", 1)[0] for line in lines}
    for line in lines:
      paragraphs = wiki_corpus.paragraphs_of_line(line)
      body = "\n".join(paragraphs)
      assert len(body.encode("utf-8")) >= wiki_corpus.MIN_BODY_BYTES
      assert "&amp;" not in body and "<ref" not in body and "<br" not in body
      assert all(p == p.strip() and p for p in paragraphs)
    assert all(wiki_corpus.is_validation(i) == (split == "validation")
               for i in ids[split])
  assert not ids["train"] & ids["validation"]
  assert len(ids["train"]) > 3000 and len(ids["validation"]) > 100


def test_missing_or_empty_corpus_file_is_an_error(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match=rf"{tmp_path}/validation.tsv.gz does not exist"):
    wiki.corpus_file("validation", str(tmp_path))
  with open(tmp_path / "train.tsv.gz", "wb") as f:
    f.write(wiki_corpus.gzip_bytes(b""))
  with pytest.raises(ValueError, match=r"train.tsv.gz is empty"):
    wiki.corpus_file("train", str(tmp_path))


def test_corpus_line_needs_id_title_and_text():
  with pytest.raises(ValueError, match="fewer than 3 tab-separated fields"):
    wiki_corpus.paragraphs_of_line("12\tTitle only")


# ------------------------------------------------------- names and vocab


def test_unknown_task_name_is_named_with_suggestions():
  with pytest.raises(ValueError,
                     match=r"Unknown task or mixture 'wiki_span_corruptoin'"
                     r"\. Did you mean wiki_span_corruption"):
    registry.get_task_or_mixture("wiki_span_corruptoin")


def test_vocabulary_choice_gin_over_env_over_default(monkeypatch):
  monkeypatch.delenv(vocab.VOCABULARY_ENV_VAR, raising=False)
  assert vocab.VOCABULARY.sentencepiece_model_file == paths.EMBEDDED_VOCAB_PATH
  monkeypatch.setenv(vocab.VOCABULARY_ENV_VAR, "t5")
  assert (vocab.VOCABULARY.sentencepiece_model_file ==
          "gs://t5-data/vocabs/cc_all.32000/sentencepiece.model")
  gin.bind_parameter("switch_mtf.tasks.task_vocabulary.name", "embedded")
  assert vocab.VOCABULARY.sentencepiece_model_file == paths.EMBEDDED_VOCAB_PATH
  assert vocab.VOCABULARY.extra_ids == 100


def test_unknown_vocabulary_name_lists_choices():
  gin.bind_parameter("switch_mtf.tasks.task_vocabulary.name", "t6")
  with pytest.raises(ValueError, match=r"Unknown vocabulary 't6': use one of "
                     r"\['embedded', 'mt5', 't5'\]"):
    vocab.VOCABULARY.encode("x")


def test_missing_vocabulary_file_names_the_path(tmp_path):
  missing = str(tmp_path / "nope.model")
  gin.bind_parameter("switch_mtf.tasks.task_vocabulary.name", missing)
  with pytest.raises(FileNotFoundError, match=rf"{missing} does not exist"):
    vocab.VOCABULARY.encode("x")
