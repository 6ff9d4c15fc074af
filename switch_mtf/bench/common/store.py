"""Resumable result files: one JSON per suite, one entry per finished config.

Each file records the exact command that produced it (and every command that
added to it, when a run was resumed), so a committed result can be
regenerated. Writes are atomic (temp file + rename): an interrupted benchmark
leaves the last complete file, and the next run skips what it holds.
"""

import json
import os
import shlex
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple


def current_command(argv: Optional[Sequence[str]] = None) -> str:
  """The shell command line of this process (argv[0] as typed)."""
  argv = list(sys.argv if argv is None else argv)
  return " ".join(shlex.quote(a) for a in argv)


class ResultStore:
  """Entries keyed by config key, persisted in `path` after every put."""

  def __init__(self, path: str, command: Optional[str] = None,
               meta: Optional[Dict[str, Any]] = None):
    self.path = path
    self._data = {"commands": [], "meta": {}, "entries": {}}
    if os.path.exists(path):
      with open(path) as f:
        loaded = json.load(f)
      if not isinstance(loaded.get("entries"), dict):
        raise ValueError(
            "%s is not a result file of tools/bench.py (no 'entries' "
            "object); move it away or pass another --results_dir." % path)
      self._data.update(loaded)
    if command and (not self._data["commands"]
                    or self._data["commands"][-1]["command"] != command):
      self._data["commands"].append(
          {"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    if meta:
      self._data["meta"].update(meta)

  @property
  def commands(self) -> List[Dict[str, str]]:
    return list(self._data["commands"])

  @property
  def meta(self) -> Dict[str, Any]:
    return self._data["meta"]

  def done(self, key: str) -> bool:
    return key in self._data["entries"]

  def get(self, key: str) -> Optional[Dict[str, Any]]:
    return self._data["entries"].get(key)

  def put(self, key: str, value: Dict[str, Any]) -> None:
    # Kept as the file will hold it (tuples become lists), so that `get`
    # returns the same before and after a reload.
    self._data["entries"][key] = json.loads(json.dumps(value))
    self.save()

  def drop(self, key: str) -> None:
    """Forgets an entry that no longer holds (the file's history keeps it)."""
    del self._data["entries"][key]
    self.save()

  def items(self) -> Iterator[Tuple[str, Dict[str, Any]]]:
    return iter(self._data["entries"].items())

  def pending(self, keys: Sequence[str]) -> List[str]:
    """The keys without an entry, in the given order."""
    return [k for k in keys if not self.done(k)]

  def save(self) -> None:
    directory = os.path.dirname(os.path.abspath(self.path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would leave unreadable results
    with os.fdopen(fd, "w") as f:
      json.dump(self._data, f, indent=1, sort_keys=True)
      f.write("\n")
    os.replace(tmp, self.path)
