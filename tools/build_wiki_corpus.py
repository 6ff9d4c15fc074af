"""Builds a Wikipedia pretraining corpus from the upstream WikiExtractor files.

    python tools/build_wiki_corpus.py                  # the embedded corpus
    python tools/build_wiki_corpus.py --corpus=large   # the headline corpus

`embedded` rewrites switch_mtf/tasks/data/wiki/ byte-identical to the shipped
files (tests/tasks/test_data_rebuild.py checks this); `large` builds the
64-file corpus of the headline experiment (not shipped) into
switch_mtf.tasks.wiki_large.wiki_large_dir() and checks it against the
sha256 it is defined with. The cleaning rules live in
`switch_mtf.tasks.wiki_corpus`.
"""

import os

from absl import app
from absl import flags

from switch_mtf.tasks import paths
from switch_mtf.tasks import wiki_corpus
from switch_mtf.tasks import wiki_large

_CORPUS = flags.DEFINE_enum(
    "corpus", "embedded", ["embedded", "large"],
    "embedded: wiki_00 ... wiki_09 into the shipped data folder; large: all "
    "64 files (wiki_00 ... wiki_63), for the headline experiment.")
_SOURCE_DIR = flags.DEFINE_list(
    "source_dir", None,
    "Folder(s) with the upstream files (Vibhas-hs-edu/WikiTasks text/AA/ at "
    "commit 52b1f163; see switch_mtf/tasks/data/wiki/SOURCE.md). Default: "
    "../shared/data/wikipedia_en_sample (and wikipedia_en_extra for large).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Where to write train.tsv.gz and validation.tsv.gz. Default: the shipped "
    "data folder (embedded) or wiki_large_dir() (large: "
    "$SWITCH_MTF_WIKI_LARGE_DIR, else ~/.cache/switch_mtf/wiki_large).")


def main(argv):
  del argv
  try:
    written = _build()
  except (FileNotFoundError, ValueError) as e:
    # Missing upstream files or a checksum mismatch: the message says what
    # to pass; nothing was written.
    raise SystemExit("build_wiki_corpus: %s" % e) from e
  for path in written:
    print(f"wrote {path} ({os.path.getsize(path):,} bytes, sha256 "
          f"{wiki_corpus.file_sha256(path)})")


def _build():
  """The written files of the corpus the flags ask for."""
  if _CORPUS.value == "embedded":
    return wiki_corpus.build_corpus(
        _SOURCE_DIR.value or [
            os.path.join(paths.SHARED_DATA_DIR, "wikipedia_en_sample")],
        _OUTPUT_DIR.value or paths.WIKI_DIR)
  return wiki_large.build(_OUTPUT_DIR.value,
                          _SOURCE_DIR.value or wiki_large.SOURCE_DIRS)


if __name__ == "__main__":
  app.run(main)
