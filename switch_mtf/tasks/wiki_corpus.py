"""Turns WikiExtractor `<doc>` files into the embedded pretraining corpus.

The shipped Wikipedia sample is raw WikiExtractor output: HTML-escaped, with
leftover wiki markup and thousands of title-only stubs. C4 documents are clean
prose, so the same cleaning is applied here before anything is tokenized, and
the train/validation split is made by whole article so that no validation text
was seen in training (or by the vocabulary).

The corpus format is one article per line, tab-separated:
`page_id <TAB> title <TAB> paragraph_1 <TAB> paragraph_2 ...`. Keeping the page
id and title on every line is what carries the CC BY-SA attribution
(https://en.wikipedia.org/wiki?curid=<page_id>); the paragraphs are what the
span-corruption task reads.
"""

import dataclasses
import functools
import gzip
import hashlib
import html
import os
import re
from typing import Iterable, Iterator, List, Sequence, Tuple

# WikiExtractor output is not XML (no root element), so documents are found
# with a regex, as its own readers do.
_DOC = re.compile(
    r'<doc id="(?P<id>\d+)" url="[^"]*" title="(?P<title>[^"]*)">\n'
    r"(?P<body>.*?)</doc>", re.S)
# Elements whose content is not prose either: map data (JSON) and fragments
# of the MediaWiki XML dump that leaked into a few pages.
_DROPPED_ELEMENTS = re.compile(
    r"<(?P<tag>mapframe|gallery|timeline|graph|math|score|ns|id|revision|"
    r"timestamp|contributor|username|comment|model|format|sha1|parentid)\b"
    r"[^<>]*>.*?</(?P=tag)\s*>", re.S | re.I)
# Any remaining tag (`<ref name=..>`, `<br>`, `<section begin=x />`,
# `</onlyinclude>`): a tag name must follow `<` directly, so text such as
# "a < b" is left alone.
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
# A reference whose tag was never closed ('<ref? "Sketch Plan", 1954.') runs
# to the end of its paragraph.
_UNCLOSED_REF = re.compile(r"<ref\b[^<>]*$", re.I)
# Holes left by templates WikiExtractor dropped: "Harrow School ()",
# "( ; born 1990)".
_EMPTY_PARENS = re.compile(r"\s*\(\s*[,;:]?\s*\)")
_LEADING_PUNCT_IN_PARENS = re.compile(r"\(\s*[,;:]\s*")
_SPACES = re.compile(r"\s+")

MIN_BODY_BYTES = 200
VALIDATION_PERCENT = 5
TRAIN_FILE = "train.tsv.gz"
VALIDATION_FILE = "validation.tsv.gz"
# The ten upstream files (see data/wiki/SOURCE.md). Checking them makes
# "rebuilds bit for bit" a statement about known inputs.
SOURCE_SHA256 = {
    "wiki_00":
        "1a522a9208dc6a46c2b0f2f9c412fa4e28ea2848779d96b381423d34b00024c4",
    "wiki_01":
        "d0adc01f32c75e7aa57c49d52a142855fbd5eea75e765cb8dc4c3fb14a0612f0",
    "wiki_02":
        "3b1fb753c9e3c0efff495833943a849fb0ab3956cb367f470fe76304056bf183",
    "wiki_03":
        "111c6b4a4f34280aec8bf75b9ab0d0912c23296512f84947000bcafffc7d3287",
    "wiki_04":
        "c1ce75f70d0bb5d3567a18909e9c499ec96f9dccb2bd20f0edec995b97e76e35",
    "wiki_05":
        "72f64bfbc792faf507eb4acc3796f7390ffdaf1b1fb4bdf58d870cf8849421e5",
    "wiki_06":
        "e96f03f80a671b09704cefeef3b5f5d83df6ec5ec2b7b4706dd0e0c9b7a34603",
    "wiki_07":
        "47428cd61f8704a52c24e46c6e7a6511e49f20873488fa5834d624bbece31981",
    "wiki_08":
        "876e015d206a1289708226d3cfe49689b78b82dee2a956dd89223c92a7b61ee5",
    "wiki_09":
        "47f372237854376b5bade6b18f2e6ca9e9b522c4a303c135e812fb8465f26145",
}


@dataclasses.dataclass(frozen=True)
class Article:
  """One cleaned Wikipedia article."""
  page_id: str
  title: str
  paragraphs: Tuple[str, ...]

  @property
  def body_bytes(self) -> int:
    return len("\n".join(self.paragraphs).encode("utf-8"))

  def to_line(self) -> str:
    return "\t".join((self.page_id, self.title) + self.paragraphs)


def parse_docs(text: str) -> Iterator[Tuple[str, str, str]]:
  """Yields (page_id, title, raw_body) of each `<doc>` in WikiExtractor text."""
  for match in _DOC.finditer(text):
    yield match.group("id"), match.group("title"), match.group("body")


def clean_paragraph(line: str) -> str:
  """Removes leftover markup and template holes from one line of text."""
  line = _UNCLOSED_REF.sub("", _TAG.sub(" ", line))
  line = _EMPTY_PARENS.sub("", line)
  line = _LEADING_PUNCT_IN_PARENS.sub("(", line)
  return _SPACES.sub(" ", line).strip()


def clean_article(page_id: str, title: str, raw_body: str) -> Article:
  """Unescapes and cleans a raw WikiExtractor body; drops the title line."""
  title = html.unescape(title)
  body = _DROPPED_ELEMENTS.sub("\n", html.unescape(raw_body))
  paragraphs = [clean_paragraph(line) for line in body.split("\n")]
  paragraphs = [p for p in paragraphs if p]
  # WikiExtractor repeats the title as the first line; C4 has no titles.
  if paragraphs and paragraphs[0] == title:
    paragraphs = paragraphs[1:]
  return Article(page_id=page_id, title=title, paragraphs=tuple(paragraphs))


def is_validation(page_id: str) -> bool:
  """Stable per-article split: depends only on the page id, not on order."""
  digest = hashlib.sha256(page_id.encode("ascii")).digest()
  return int.from_bytes(digest[:8], "big") % 100 < VALIDATION_PERCENT


def clean_corpus(
    texts: Iterable[str],
    min_body_bytes: int = MIN_BODY_BYTES) -> Tuple[List[Article],
                                                   List[Article]]:
  """Cleans WikiExtractor files; returns (train, validation) articles."""
  train, validation = [], []
  for text in texts:
    for page_id, title, raw_body in parse_docs(text):
      article = clean_article(page_id, title, raw_body)
      if article.body_bytes < min_body_bytes:
        continue  # Stubs and redirect-like pages.
      (validation if is_validation(page_id) else train).append(article)
  return train, validation


def read_sources(source_dir: str) -> List[str]:
  """Texts of the upstream files, in name order, after checking their sha256."""
  texts = []
  for name, expected in sorted(SOURCE_SHA256.items()):
    path = os.path.join(source_dir, name)
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"Wikipedia source file {path} is missing; pass the folder holding "
          f"wiki_00 ... wiki_09 (WikiExtractor output) as --source_dir.")
    with open(path, "rb") as f:
      data = f.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
      raise ValueError(
          f"{path} has sha256 {actual}, expected {expected}: it is not the "
          "upstream file the shipped corpus was built from.")
    texts.append(data.decode("utf-8"))
  return texts


def gzip_bytes(data: bytes) -> bytes:
  """gzip with a fixed header (no name, mtime 0) so rebuilds are identical."""
  return gzip.compress(data, compresslevel=9, mtime=0)


def articles_to_gzip(articles: Sequence[Article]) -> bytes:
  return gzip_bytes("".join(a.to_line() + "\n" for a in articles).encode(
      "utf-8"))


def check_corpus_file(path: str) -> str:
  """Returns `path` if every line is an article with page id and title.

  The task's TensorFlow reader strips the first two fields blindly, so a line
  without them would leak a title into the text (or lose text) silently;
  hence the whole file is checked, once per file version.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"Wikipedia corpus file {path} does not exist; rebuild it with "
        "`python tools/build_wiki_corpus.py`.")
  stat = os.stat(path)
  _check_corpus_lines(path, stat.st_mtime_ns, stat.st_size)
  return path


@functools.lru_cache(maxsize=16)
def _check_corpus_lines(path: str, unused_mtime_ns: int,
                        unused_size: int) -> None:
  """Raises a ValueError naming `path:line` for a line that is no article."""
  opener = gzip.open if path.endswith(".gz") else open
  articles = 0
  with opener(path, "rt", encoding="utf-8") as f:
    for line_number, line in enumerate(f, 1):
      if not line.strip():
        continue
      fields = line.rstrip("\n").split("\t")
      if len(fields) < 3 or not fields[0].isdigit() or not fields[1].strip():
        raise ValueError(
            f"{path}:{line_number}: not a corpus article line; expected "
            "`page_id <TAB> title <TAB> paragraph ...` with a numeric page "
            f"id and a title, got {line[:80]!r}. Rebuild the corpus with "
            "`python tools/build_wiki_corpus.py`.")
      articles += 1
  if not articles:
    raise ValueError(
        f"Wikipedia corpus file {path} is empty: it has no articles.")


def read_corpus_lines(path: str) -> List[str]:
  """The article lines of a corpus file (.gz or plain)."""
  opener = gzip.open if check_corpus_file(path).endswith(".gz") else open
  with opener(path, "rt", encoding="utf-8") as f:
    return [line.rstrip("\n") for line in f if line.strip()]


def paragraphs_of_line(line: str) -> List[str]:
  """The paragraphs of one corpus line (drops page id and title)."""
  fields = line.split("\t")
  if len(fields) < 3:
    raise ValueError(
        "Corpus line has fewer than 3 tab-separated fields (page_id, title, "
        f"text): {line[:80]!r}")
  return fields[2:]


def build_corpus(source_dir: str, output_dir: str) -> Tuple[str, str]:
  """Writes the cleaned train/validation files; returns their paths."""
  train, validation = clean_corpus(read_sources(source_dir))
  os.makedirs(output_dir, exist_ok=True)
  paths = []
  for name, articles in ((TRAIN_FILE, train), (VALIDATION_FILE, validation)):
    path = os.path.join(output_dir, name)
    with open(path, "wb") as f:
      f.write(articles_to_gzip(articles))
    paths.append(path)
  return paths[0], paths[1]
