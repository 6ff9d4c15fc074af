"""Rebuilds the shipped SuperGLUE folder (switch_mtf/tasks/data/superglue).

    python tools/build_superglue_data.py [--source_dir=../shared/data/superglue]

Output is byte-identical to the shipped files
(tests/tasks/test_data_rebuild.py); what is shipped and how BoolQ is split
is in `switch_mtf.tasks.superglue_data`.
"""

import os

from absl import app
from absl import flags

from switch_mtf.tasks import paths
from switch_mtf.tasks import superglue_data

_SOURCE_DIR = flags.DEFINE_string(
    "source_dir", os.path.join(paths.SHARED_DATA_DIR, "superglue"),
    "Folder of the official SuperGLUE jsonl files (<Task>/<split>.jsonl).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", paths.SUPERGLUE_DIR, "Where to write <Task>/*.jsonl.gz.")


def main(argv):
  del argv
  for path in superglue_data.build_superglue_data(_SOURCE_DIR.value,
                                                  _OUTPUT_DIR.value):
    print(f"wrote {path} ({os.path.getsize(path):,} bytes)")


if __name__ == "__main__":
  app.run(main)
