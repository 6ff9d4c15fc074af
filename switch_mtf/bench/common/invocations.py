"""How long each `tools/bench.py` invocation took, kept beside its results.

One entry per invocation that ran (not --report_only): command, parts,
filters, wall-clock seconds, how many results it stored, the machine's load
meanwhile, commit. `make bench`'s time is then read, not estimated.
"""

import json
import os
from typing import Any, Dict, List

FILE = "invocations.json"


def load(root: str) -> List[Dict[str, Any]]:
  path = os.path.join(root, FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return json.load(f)


def record(root: str, entry: Dict[str, Any]) -> None:
  """Appends one invocation to root/invocations.json (atomic rewrite)."""
  entries = load(root) + [entry]
  os.makedirs(root, exist_ok=True)
  path = os.path.join(root, FILE)
  with open(path + ".tmp", "w") as f:
    json.dump(entries, f, indent=1, sort_keys=True)
    f.write("\n")
  os.replace(path + ".tmp", path)
