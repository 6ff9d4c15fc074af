"""Finding and reading local SuperGLUE files, with errors that name the file.

The local tasks read any folder in the official SuperGLUE layout,
`<Task>/{train,val}.jsonl` (the shipped copy stores them gzip-compressed as
`.jsonl.gz`; either name is accepted). A wrong folder, a missing or empty file
or a malformed row must stop the run with the offending path and line, never
produce a silently empty dataset.
"""

import gzip
import json
import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple
import zlib

import gin

from switch_mtf.tasks import paths

SUPERGLUE_DIR_ENV_VAR = "SWITCH_MTF_SUPERGLUE_DIR"
# seqio split name -> file stem of the official layout.
SPLIT_FILES = {"train": "train", "validation": "val"}

Row = Dict[str, Any]


@gin.configurable(module="switch_mtf.tasks")
def local_superglue_dir(path: Optional[str] = None) -> str:
  """The SuperGLUE folder: gin binding, else env var, else the shipped copy."""
  return path or os.environ.get(SUPERGLUE_DIR_ENV_VAR) or paths.SUPERGLUE_DIR


def split_file(data_dir: str, task_dir: str, split: str) -> str:
  """Path of `<data_dir>/<task_dir>/<train|val>.jsonl[.gz]`; must exist."""
  if split not in SPLIT_FILES:
    raise ValueError(
        f"Unknown split {split!r} for local SuperGLUE task {task_dir}: use one "
        f"of {sorted(SPLIT_FILES)}.")
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(
        f"SuperGLUE data directory {data_dir} does not exist. Point "
        f"{SUPERGLUE_DIR_ENV_VAR} (or gin `local_superglue_dir.path`) at a "
        "folder laid out as <Task>/{train,val}.jsonl.")
  stem = os.path.join(data_dir, task_dir, SPLIT_FILES[split])
  for path in (stem + ".jsonl", stem + ".jsonl.gz"):
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(
      f"{stem}.jsonl (or .jsonl.gz) not found: the {split!r} split of "
      f"{task_dir} needs it in the SuperGLUE folder {data_dir}.")


def _binary_lines(path: str) -> Iterator[bytes]:
  """Lines as bytes; a damaged gzip file is reported with its path."""
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      yield from f
  except FileNotFoundError:
    raise
  except (EOFError, OSError, zlib.error) as e:
    raise ValueError(
        f"{path}: cannot be read ({type(e).__name__}: {e}); the file is "
        "damaged or truncated, restore it from its source.") from e


def read_jsonl(path: str) -> List[Tuple[int, Row]]:
  """(line number, row) for every non-blank line; errors name file and line."""
  rows = []
  for line_number, raw in enumerate(_binary_lines(path), start=1):
    try:
      line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
      raise ValueError(
          f"{path}:{line_number}: not UTF-8 ({e.reason} at byte "
          f"{e.start}).") from e
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(
          f"{path}:{line_number}: malformed JSON ({e.msg} at column "
          f"{e.colno}).") from e
    if not isinstance(row, dict):
      raise ValueError(
          f"{path}:{line_number}: expected a JSON object, got "
          f"{type(row).__name__}.")
    rows.append((line_number, row))
  if not rows:
    raise ValueError(f"{path} is empty: it has no JSON rows.")
  return rows


def require_fields(row: Row, fields: Iterable[str], path: str,
                   line_number: int) -> None:
  """Raises naming the file, line and fields when any field is missing."""
  missing = [field for field in fields if field not in row]
  if missing:
    raise ValueError(
        f"{path}:{line_number}: row lacks field(s) {missing}; has "
        f"{sorted(row)}.")
