"""Writes the measured sections of README.md and docs/*.md from results/.

  python tools/write_docs.py          # rewrite every generated section
  python tools/write_docs.py --check  # exit 1 if a document would change

Sections sit between `<!-- BEGIN GENERATED name ... -->` and
`<!-- END GENERATED name -->`; see switch_mtf/bench/documents/.
"""

import argparse
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 when a document differs "
                      "from what the results say.")
  args = parser.parse_args(argv)
  from switch_mtf.bench.documents import markers  # pylint: disable=g-import-not-at-top
  from switch_mtf.bench.documents import sections  # pylint: disable=g-import-not-at-top
  try:
    changed = sections.write(REPO_DIR, check=args.check)
  except (FileNotFoundError, KeyError, markers.DocumentError) as e:
    print("error: %s" % (e.args[0] if e.args else e), file=sys.stderr)
    return 2
  if args.check:
    if changed:
      print("out of date: %s; run `python tools/write_docs.py` and commit "
            "the result." % ", ".join(changed))
      return 1
    print("generated documents are up to date")
    return 0
  print("rewrote %s" % (", ".join(changed) if changed else "nothing (all "
                        "up to date)"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
