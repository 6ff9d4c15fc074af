"""Pretraining on the large Wikipedia corpus (the headline experiment).

All 64 upstream WikiExtractor files of the folder the embedded sample comes
from (5.4x its article text), cleaned and split exactly as the embedded
corpus (wiki_corpus.py: same rules, same per-article validation hash, so the
embedded validation articles are validation here too). It is not shipped:
20 MB of gzip built in about 20 s from the upstream files by

    python tools/build_wiki_corpus.py --corpus=large

into `wiki_large_dir()`. Both files are checked against the sha256 the
experiment was defined with before a dataset reads them, so a stale or
partial build cannot be trained on silently.
"""

import functools
import os
from typing import Optional, Tuple

import gin
import seqio

from switch_mtf.tasks import denoising
from switch_mtf.tasks import paths
from switch_mtf.tasks import registry
from switch_mtf.tasks import vocab
from switch_mtf.tasks import wiki
from switch_mtf.tasks import wiki_corpus

DIR_ENV_VAR = "SWITCH_MTF_WIKI_LARGE_DIR"
DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "switch_mtf",
                           "wiki_large")
SOURCES = {**wiki_corpus.SOURCE_SHA256, **wiki_corpus.EXTRA_SOURCE_SHA256}
SOURCE_DIRS = (os.path.join(paths.SHARED_DATA_DIR, "wikipedia_en_sample"),
               os.path.join(paths.SHARED_DATA_DIR, "wikipedia_en_extra"))
CORPUS_SHA256 = {
    wiki_corpus.TRAIN_FILE:
        "2be576d9a1dd101137530b582e8b2840aa9113d1ed6c1942fae34f2ba39e02ee",
    wiki_corpus.VALIDATION_FILE:
        "cf1071908605fb714f5b4b05e83842083f983d42badffb985505a7c0c83f6d3b",
}
_BUILD_COMMAND = "python tools/build_wiki_corpus.py --corpus=large"


@gin.configurable(module="switch_mtf.tasks")
def wiki_large_dir(path: Optional[str] = None) -> str:
  """The corpus folder: gin binding, else env var, else the user cache."""
  return path or os.environ.get(DIR_ENV_VAR) or DEFAULT_DIR


def corpus_file(split: str, corpus_dir: Optional[str] = None) -> str:
  """Path of a split's file, checked to be the defined corpus."""
  if split not in wiki.SPLIT_FILES:
    raise ValueError(
        f"Unknown split {split!r} for the large Wikipedia tasks: use one of "
        f"{sorted(wiki.SPLIT_FILES)}.")
  name = wiki.SPLIT_FILES[split]
  path = os.path.join(corpus_dir or wiki_large_dir(), name)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"Large Wikipedia corpus file {path} does not exist: build it with "
        f"`{_BUILD_COMMAND} --output_dir={os.path.dirname(path)}` (or point "
        f"{DIR_ENV_VAR} / gin `wiki_large_dir.path` at a built copy).")
  stat = os.stat(path)
  actual = _sha256(path, stat.st_mtime_ns, stat.st_size)
  if actual != CORPUS_SHA256[name]:
    raise ValueError(
        f"{path} has sha256 {actual}, expected {CORPUS_SHA256[name]}: it is "
        f"not the large corpus (partial or older build?); rebuild it with "
        f"`{_BUILD_COMMAND} --output_dir={os.path.dirname(path)}`.")
  return path


@functools.lru_cache(maxsize=8)
def _sha256(path: str, unused_mtime_ns: int, unused_size: int) -> str:
  return wiki_corpus.file_sha256(path)


def build(output_dir: Optional[str] = None,
          source_dirs=SOURCE_DIRS) -> Tuple[str, str]:
  """Builds the corpus from the upstream files, checked against its sha256."""
  return wiki_corpus.build_corpus(
      source_dirs, output_dir or wiki_large_dir(), SOURCES, CORPUS_SHA256)


def ensure_built(corpus_dir: Optional[str] = None) -> str:
  """The corpus folder, built first if it holds no valid corpus."""
  corpus_dir = corpus_dir or wiki_large_dir()
  try:
    for split in wiki.SPLIT_FILES:
      corpus_file(split, corpus_dir)
  except (FileNotFoundError, ValueError):
    build(corpus_dir)
  return corpus_dir


def documents(split: str, shuffle_files: bool, seed=None):
  """`{"text": article}` per corpus line, as the embedded wiki tasks."""
  del shuffle_files, seed  # One file per split; seqio shuffles examples.
  return wiki.article_documents(corpus_file(split))


_SOURCE = seqio.FunctionDataSource(documents, splits=tuple(wiki.SPLIT_FILES))

registry.add_task(
    "wiki_large_span_corruption",
    source=_SOURCE,
    preprocessors=denoising.span_corruption_preprocessors(),
    output_features=vocab.output_features(),
    metric_fns=[])
