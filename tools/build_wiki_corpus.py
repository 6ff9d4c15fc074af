"""Rebuilds the embedded Wikipedia corpus (switch_mtf/tasks/data/wiki/).

    python tools/build_wiki_corpus.py \
        [--source_dir=../shared/data/wikipedia_en_sample]

The output is byte-identical to the shipped files
(tests/tasks/test_data_rebuild.py checks this); the cleaning rules live in
`switch_mtf.tasks.wiki_corpus`.
"""

import os

from absl import app
from absl import flags

from switch_mtf.tasks import paths
from switch_mtf.tasks import wiki_corpus

_SOURCE_DIR = flags.DEFINE_string(
    "source_dir", os.path.join(paths.SHARED_DATA_DIR, "wikipedia_en_sample"),
    "Folder with the upstream WikiExtractor files wiki_00 ... wiki_09.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", paths.WIKI_DIR,
    "Where to write train.tsv.gz and validation.tsv.gz.")


def main(argv):
  del argv
  for path in wiki_corpus.build_corpus(_SOURCE_DIR.value, _OUTPUT_DIR.value):
    print(f"wrote {path} ({os.path.getsize(path):,} bytes)")


if __name__ == "__main__":
  app.run(main)
