"""Commits a finished demo run folder's record into results/demo/.

  /usr/bin/time -f %e -o /tmp/demo.time make demo
  python tools/record_run.py output/demo results/demo --command="make demo" \
      --wall_seconds=$(cat /tmp/demo.time)

Copies the reports, plots, configs, timings, operative configs and CLI
commands (not checkpoints or event files) and writes record.json with the
command and the checkout's commit; `python tools/write_docs.py` then quotes
them in README.md, docs/demo.md and docs/distill.md.
"""

import argparse
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("run_dir", help="a finished `make demo` run folder.")
  parser.add_argument("dest", help="where the record goes (results/demo).")
  parser.add_argument("--command", required=True,
                      help="the command that produced the run folder.")
  parser.add_argument("--wall_seconds", type=float, default=None,
                      help="its measured wall-clock time, if any.")
  args = parser.parse_args(argv)
  from switch_mtf.bench.documents import records  # pylint: disable=g-import-not-at-top
  try:
    written = records.import_run(args.run_dir, args.dest, args.command,
                                 args.wall_seconds)
  except records.RecordError as e:
    print("error: %s" % e, file=sys.stderr)
    return 2
  print("wrote %d files into %s" % (len(written), args.dest))
  return 0


if __name__ == "__main__":
  sys.exit(main())
