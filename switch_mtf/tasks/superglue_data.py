"""Builds the shipped SuperGLUE folder (data/superglue) from the upstream files.

CB, COPA, RTE and WSC are shipped whole (train and val, upstream bytes,
gzip-compressed). BoolQ's official train split is not available offline, so
its official validation set is split in two by Wikipedia article: every
question about one article lands on the same side (a document-disjoint split,
as BoolQ's own train/dev split is), about 20% of the articles to `val`. Rows
are copied verbatim, line by line.
"""

import hashlib
import json
import os
from typing import List, Tuple

from switch_mtf.tasks import wiki_corpus

# Upstream files used (sha256 from ../shared/data/superglue/SOURCE.md).
SOURCE_SHA256 = {
    "BoolQ/val.jsonl":
        "0c86a5045886e5795fe9052003873f7d94b88ed3028a33007c51d99e44fd66d9",
    "CB/train.jsonl":
        "32017480d3a10508646e3efd64502c639f13d4d15077f278d2fd0992c33a3126",
    "CB/val.jsonl":
        "c6125587e9601560cb16ea223c33964c5a915568d2af68a81f651b6ef25395ec",
    "COPA/train.jsonl":
        "e74ed25f36119fff954d90900ebbaae277e2cc4864be4b961e7a46c8f67d11a9",
    "COPA/val.jsonl":
        "fa61467cc251010178ed72f8ca82a0fceefc4ca9a85f87ec3b6102955e1a1f1a",
    "RTE/train.jsonl":
        "fdfb03443abe3ec0424b7fc5d1a8863361719bc061338b7a63e56b94d615f201",
    "RTE/val.jsonl":
        "ab990507bf5f35dc176cba7770a72bfa2c50a88ed72b8cc95cfbf9db95ab1af1",
    "WSC/train.jsonl":
        "0ffaa3fd8d21e58a0805962565d1619aa4819bc3d034255777f606f801ae5a42",
    "WSC/val.jsonl":
        "e5c685ea4bdc347354036a28176459f6feeb0b6870375ecfb3d6ddb1f0e28bef",
}
BOOLQ_SOURCE = "BoolQ/val.jsonl"
BOOLQ_VALIDATION_PERCENT = 20


def read_source(source_dir: str, name: str) -> bytes:
  """An upstream file's bytes, after checking its sha256."""
  path = os.path.join(source_dir, name)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"SuperGLUE source file {path} is missing; pass the folder of the "
        "official SuperGLUE jsonl files as --source_dir.")
  with open(path, "rb") as f:
    data = f.read()
  actual = hashlib.sha256(data).hexdigest()
  if actual != SOURCE_SHA256[name]:
    raise ValueError(f"{path} has sha256 {actual}, expected "
                     f"{SOURCE_SHA256[name]} (the upstream file).")
  return data


def boolq_article(line: bytes) -> str:
  """The Wikipedia article a BoolQ row is about ("Title -- passage")."""
  return json.loads(line)["passage"].split(" -- ", 1)[0]


def is_boolq_validation(article: str) -> bool:
  digest = hashlib.sha256(article.encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") % 100 < BOOLQ_VALIDATION_PERCENT


def split_boolq(data: bytes) -> Tuple[bytes, bytes]:
  """(train, val) jsonl bytes: BoolQ rows split by article, verbatim."""
  train: List[bytes] = []
  validation: List[bytes] = []
  for line in data.splitlines(keepends=True):
    if line.strip():
      side = validation if is_boolq_validation(boolq_article(line)) else train
      side.append(line)
  return b"".join(train), b"".join(validation)


def build_superglue_data(source_dir: str, output_dir: str) -> List[str]:
  """Writes `<Task>/{train,val}.jsonl.gz` into output_dir; returns the paths."""
  files = {}
  for name in SOURCE_SHA256:
    if name != BOOLQ_SOURCE:
      files[name] = read_source(source_dir, name)
  files["BoolQ/train.jsonl"], files["BoolQ/val.jsonl"] = split_boolq(
      read_source(source_dir, BOOLQ_SOURCE))
  written = []
  for name, data in sorted(files.items()):
    path = os.path.join(output_dir, name + ".gz")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(wiki_corpus.gzip_bytes(data))
    written.append(path)
  return written
