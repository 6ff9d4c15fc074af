"""The build tools reproduce every shipped data file bit for bit.

They read the upstream copies in ../shared/data (next to the checkout on the
project's machines and in CI); elsewhere these tests skip.
"""

import gzip
import hashlib
import os

import pytest

from switch_mtf.tasks import paths
from switch_mtf.tasks import superglue_data
from switch_mtf.tasks import vocab_builder
from switch_mtf.tasks import wiki_corpus

_WIKI_SOURCE = os.path.join(paths.SHARED_DATA_DIR, "wikipedia_en_sample")
_SUPERGLUE_SOURCE = os.path.join(paths.SHARED_DATA_DIR, "superglue")


def _read(path):
  with open(path, "rb") as f:
    return f.read()


def _assert_same_files(built_paths, built_root, shipped_root):
  assert built_paths
  for built in built_paths:
    shipped = os.path.join(shipped_root, os.path.relpath(built, built_root))
    assert _read(built) == _read(shipped), f"{shipped} differs from rebuild"


@pytest.mark.skipif(not os.path.isdir(_WIKI_SOURCE),
                    reason=f"upstream copy {_WIKI_SOURCE} not present")
def test_wiki_corpus_rebuilds_bit_for_bit(tmp_path):
  built = wiki_corpus.build_corpus(_WIKI_SOURCE, str(tmp_path))
  _assert_same_files(built, str(tmp_path), paths.WIKI_DIR)


@pytest.mark.skipif(not os.path.isdir(_SUPERGLUE_SOURCE),
                    reason=f"upstream copy {_SUPERGLUE_SOURCE} not present")
def test_superglue_data_rebuilds_bit_for_bit(tmp_path):
  built = superglue_data.build_superglue_data(_SUPERGLUE_SOURCE,
                                              str(tmp_path))
  shipped = sorted(
      os.path.join(root, name)
      for root, _, names in os.walk(paths.SUPERGLUE_DIR)
      for name in names if name.endswith(".jsonl.gz"))
  assert len(built) == len(shipped)
  _assert_same_files(built, str(tmp_path), paths.SUPERGLUE_DIR)


def test_shipped_files_outside_boolq_are_upstream_bytes():
  # CB/COPA/RTE/WSC are shipped unchanged (only compressed): their content
  # hashes are the upstream ones recorded in SOURCE.md.
  for name, expected in superglue_data.SOURCE_SHA256.items():
    if name == superglue_data.BOOLQ_SOURCE:
      continue
    with gzip.open(os.path.join(paths.SUPERGLUE_DIR, name + ".gz")) as f:
      assert hashlib.sha256(f.read()).hexdigest() == expected, name


def test_source_with_wrong_bytes_is_rejected(tmp_path):
  for name in wiki_corpus.SOURCE_SHA256:
    (tmp_path / name).write_text("not the upstream file")
  with pytest.raises(ValueError, match=r"wiki_00 has sha256 .* expected"):
    wiki_corpus.read_sources(str(tmp_path))


def test_missing_source_names_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match=rf"{tmp_path}/wiki_00"):
    wiki_corpus.read_sources(str(tmp_path))


@pytest.mark.slow  # SentencePiece training: 15-40 s on 2 cores.
def test_vocabulary_rebuilds_bit_for_bit(tmp_path):
  built = vocab_builder.build_vocab(
      os.path.join(paths.WIKI_DIR, wiki_corpus.TRAIN_FILE),
      str(tmp_path / "wiki_en_spm8k.model"))
  assert _read(built) == _read(paths.EMBEDDED_VOCAB_PATH)
