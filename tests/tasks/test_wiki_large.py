"""The large Wikipedia corpus: built reproducibly, checked before use.

The build reads the upstream copies in ../shared/data (next to the checkout
on the project's machines and in CI); elsewhere those tests skip.
"""

import os
import subprocess
import sys

import pytest
import seqio

from switch_mtf.tasks import paths
from switch_mtf.tasks import wiki
from switch_mtf.tasks import wiki_corpus
from switch_mtf.tasks import wiki_large
from tests import repo_paths

_HAVE_SOURCES = all(os.path.isdir(d) for d in wiki_large.SOURCE_DIRS)
_EMBEDDED_SOURCE = wiki_large.SOURCE_DIRS[0]


def _page_ids(path):
  return {line.split("\t", 1)[0]
          for line in wiki_corpus.read_corpus_lines(path)}


@pytest.mark.skipif(not _HAVE_SOURCES, reason="upstream copies not present")
def test_built_corpus_has_its_sha256_and_feeds_the_task(tmp_path,
                                                         monkeypatch):
  corpus_dir = str(tmp_path / "wiki_large")
  assert wiki_large.ensure_built(corpus_dir) == corpus_dir
  for split in wiki.SPLIT_FILES:
    path = wiki_large.corpus_file(split, corpus_dir)
    assert (wiki_corpus.file_sha256(path)
            == wiki_large.CORPUS_SHA256[os.path.basename(path)])
  # Same per-article split as the embedded corpus: its validation articles
  # are validation articles here, and no article is in both splits.
  large_train = _page_ids(wiki_large.corpus_file("train", corpus_dir))
  large_validation = _page_ids(
      wiki_large.corpus_file("validation", corpus_dir))
  assert _page_ids(wiki.corpus_file("validation")) <= large_validation
  assert _page_ids(wiki.corpus_file("train")) <= large_train
  assert not large_train & large_validation
  assert len(large_train) > 5 * len(_page_ids(wiki.corpus_file("train")))

  monkeypatch.setenv(wiki_large.DIR_ENV_VAR, corpus_dir)
  dataset = seqio.get_mixture_or_task("wiki_large_span_corruption"
                                     ).get_dataset(
      {"inputs": 128, "targets": 32}, split="validation", shuffle=False,
      seed=0)
  example = next(iter(dataset.as_numpy_iterator()))
  assert example["inputs"].size and example["targets"].size


def test_missing_corpus_names_the_build_command(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match=r"train.tsv.gz does not exist: build it with "
                     r"`python tools/build_wiki_corpus.py --corpus=large"):
    wiki_large.corpus_file("train", str(tmp_path))


def test_other_bytes_are_refused(tmp_path):
  (tmp_path / wiki_corpus.VALIDATION_FILE).write_bytes(
      wiki_corpus.articles_to_gzip([]))
  with pytest.raises(ValueError, match=r"validation.tsv.gz has sha256 .*, "
                     r"expected cf10719.*rebuild it"):
    wiki_large.corpus_file("validation", str(tmp_path))


@pytest.mark.skipif(not os.path.isdir(_EMBEDDED_SOURCE),
                    reason="upstream copy not present")
def test_build_with_other_output_leaves_no_corpus(tmp_path):
  # A build whose output is not the expected bytes writes nothing a task
  # would read, not even the file that came out right.
  train_sha = wiki_corpus.file_sha256(
      os.path.join(paths.WIKI_DIR, wiki_corpus.TRAIN_FILE))
  with pytest.raises(ValueError, match="The rebuilt validation.tsv.gz"):
    wiki_corpus.build_corpus(
        _EMBEDDED_SOURCE, str(tmp_path),
        expected_sha256={wiki_corpus.TRAIN_FILE: train_sha,
                         wiki_corpus.VALIDATION_FILE: "0" * 64})
  assert not os.listdir(tmp_path)


def test_build_tool_without_sources_says_what_to_pass(tmp_path):
  out = tmp_path / "corpus"
  done = subprocess.run(
      [sys.executable,
       os.path.join(repo_paths.TOOLS_DIR, "build_wiki_corpus.py"),
       "--corpus=large", "--source_dir=%s" % (tmp_path / "missing"),
       "--output_dir=%s" % out], capture_output=True, text=True, check=False)
  assert done.returncode == 1
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("build_wiki_corpus: Wikipedia source file ")
  assert "wiki_00 is missing" in last and "--source_dir" in last
  assert "Traceback" not in done.stderr and not out.exists()
