"""Writing a model dir (or HF folder) so it appears only when complete.

Everything goes to a temporary sibling `<dir>.partial-<random>`, renamed to
`<dir>` at the end; a failed conversion removes it, an interrupted one
leaves only the `.partial-*` folder. An existing `<dir>` is replaced only
when asked, and then only after the new one is complete.
"""

import contextlib
import json
import os
import shutil
import uuid
from typing import Any, Dict, Iterator

from switch_mtf.checkpoints.errors import ConversionError

RECORD_FILE = "conversion.json"


def check_target(path: str, overwrite: bool) -> None:
  """Refuses remote or existing outputs before any work starts."""
  if "://" in path:
    raise ConversionError("%s: write to a local directory (the output is "
                          "renamed into place when complete), then copy "
                          "it." % path)
  if os.path.lexists(path) and not overwrite:
    raise ConversionError("%s already exists; pass --overwrite to replace "
                          "it." % path)
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise ConversionError("%s: its parent directory %s does not exist."
                          % (path, parent))


@contextlib.contextmanager
def staged(path: str, overwrite: bool) -> Iterator[str]:
  """Yields a temporary dir that becomes `path` when the block succeeds."""
  check_target(path, overwrite)
  path = os.path.abspath(path)
  temporary = "%s.partial-%s" % (path, uuid.uuid4().hex[:8])
  os.mkdir(temporary)
  try:
    yield temporary
  except BaseException:
    shutil.rmtree(temporary, ignore_errors=True)
    raise
  if os.path.lexists(path):  # overwrite: swap, then delete the old one
    old = "%s.old-%s" % (path, uuid.uuid4().hex[:8])
    os.rename(path, old)
    os.rename(temporary, path)
    if os.path.isdir(old):
      shutil.rmtree(old)
    else:
      os.remove(old)
  else:
    os.rename(temporary, path)


def write_record(directory: str, record: Dict[str, Any]) -> None:
  """conversion.json: where the output came from and how it was made."""
  with open(os.path.join(directory, RECORD_FILE), "w") as f:
    json.dump(record, f, indent=1, sort_keys=True)
    f.write("\n")
