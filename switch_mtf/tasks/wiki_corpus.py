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
from typing import (Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple, Union)

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
# The other 54 files of the same upstream folder (text/AA/wiki_10 ...
# wiki_63): with the ten above, the source of the large corpus.
EXTRA_SOURCE_SHA256 = {
    "wiki_10":
        "857a5837cb054775cf60d4a9991cfd3e3920770dccdd63eaa9e33f9ecd00573b",
    "wiki_11":
        "378696813b249433eaddd5ee29d75059c3375b3ce37af31da0d7cf79ef8ae380",
    "wiki_12":
        "41803730d33147d73f56d8263b1f1e347a9256f25d0b8eff2f0907f6a241e94d",
    "wiki_13":
        "113e42ab2e4df4d922fd54c14a77adb5af73c32e1f8edac8989a20d692b8167a",
    "wiki_14":
        "f63ed477e7e8014a4dfe871bffd9ea6e49bfac469f6707333e1ddb615f49fead",
    "wiki_15":
        "dac7bd16461bcd7d1119515cd3e7df46dfa03487d480ff179e3ee0ce34f3294f",
    "wiki_16":
        "4d208244548e88cb5c43d2428e142b82a605b8585558a243668ff4cbd9e552e4",
    "wiki_17":
        "4718bdb2a29780835f2f8a28c661e7c8a77d6f97e5f3dc1659f3a17de0d753bd",
    "wiki_18":
        "4af868fd9161c1ae47bcbf13f69d1f2d4a0ca6b308a87522c7032a2db0fc055c",
    "wiki_19":
        "ada714a5af7f129fc5fc4839b006feaee0d3bc19d68b65a317f190a7355d981b",
    "wiki_20":
        "75f2e83d9e16777cb31d288565560b38138c6def2e8ff5e982db265c474e61fa",
    "wiki_21":
        "9f6ed15e5e7bf9a6571227c85f2db08ab5947eed12cf89c40b86e1bc0ce52b8e",
    "wiki_22":
        "947b703abc951c08d3fa69d63fe5eaf446e8ca7a96524ff6d3017d725ff843ea",
    "wiki_23":
        "515c3e9263c15212e791d936e653eae613f3bbd88b2f96855c5d42ffff73de14",
    "wiki_24":
        "4b4d7ab99276aa39562b9936fe9848235434b9e42a3bb3a4347831ec77b27485",
    "wiki_25":
        "7fbeb6dde709a4e61a3862e31e567cd964cab9b74f7efda52b5357d29fe72055",
    "wiki_26":
        "9a4389d8dca25846c64b97b5fd1d1214ed9c424e4a4f1e1c42f239ef228f3f96",
    "wiki_27":
        "c232f508853b05449a1f165b519c6850e5bd310978b01a5950f36b9d4af5a5f2",
    "wiki_28":
        "cf5b017874adb0d23628a2b0429c29c0e126790f0d526f0f8054d1cdef46f7a2",
    "wiki_29":
        "f02938f0448eba55d520f8c96603add7b3e7010d83391923cefc7098f9bc7547",
    "wiki_30":
        "a3b084113aaee1d82c538cdfc99dca05e66445c6c8caf11863269ded204f2c16",
    "wiki_31":
        "2c8da72db3edaefb6fc181949193fc5430192b7b3fe2d255009bde301df5f4a5",
    "wiki_32":
        "802bfdf0e16f55c56cf6b85fe22db307f0c0f78ea0f0dab6bc2cfaff14e40267",
    "wiki_33":
        "081fbcdcb3a6cf0b4093e32db7488b96d16c776fd42293e36483e9643e05c4a8",
    "wiki_34":
        "2b5f2776c67e83064ee2704c6b97336c6531c82c373c2fe7ad1cd2af37736d6b",
    "wiki_35":
        "50b8857c5b517e1264c1c7fda292fc6b33be9b3ebccaa098f4e36e2edb19fa99",
    "wiki_36":
        "c73a795d623151fe28184b350e4006059c097e10cbec0c51ad4d6b0e14807121",
    "wiki_37":
        "e15e3e11cd8e829e108e7a0acbcb33837adc50f654410b55321eef2d26413ac8",
    "wiki_38":
        "4d986b080ce27c2eefc7bb6eccf40e47c364f835ea5950894223a35231382688",
    "wiki_39":
        "a804316210e912212f4bd3eb7b176a0b153acf3863c54829ce7e30508f6095fe",
    "wiki_40":
        "6fb744dfe2002cb57e404c39207c82205bcb63ce3ba207719e503adefcb894cd",
    "wiki_41":
        "b39b754a66ca45d3803a273b579dfea9519d8089025fe13e21d2370aaeedb069",
    "wiki_42":
        "cd81cf8c3a174156d762862240b304f352a7a922b28facd6e70e09736d9942b0",
    "wiki_43":
        "6018911e5e2a06fd10de52d7748c5d5bce73852eaed5daae6bf964da3f2dadf1",
    "wiki_44":
        "4f864ef3058c8184f0af2cf1442bb8b89976aa9f181e8cd58ab6e93d4c12fb4f",
    "wiki_45":
        "b194f22d6673e1c86243ab70b1dc2fd5296a5e6d5129b4e6c58b8023819fb159",
    "wiki_46":
        "132ccb00597956b311a0f4daea76da4bf896b8b6c44a9587e3fa6a93ab4cbe32",
    "wiki_47":
        "1593d8f20a8f78cae33513a7647b0083c5423cad42d57723cbab920598a0e6f5",
    "wiki_48":
        "3b364e7ef39b9e714ab4f0a494d3dc0cbcea1717437021434cae49f15c3092d0",
    "wiki_49":
        "29e67497fb06fe5c660a9e80ab5bb805e47ec030d8f0b7fd522b25422b057ab7",
    "wiki_50":
        "cf56870e7b574fe5b092eda85e8a74eab2eb040642fc1b4b0d64e814f02b7d0b",
    "wiki_51":
        "3aed1cbf6a8ed30e48bdcfd4f85840657378e34e5253a5ea9a2dffa7da1ab25a",
    "wiki_52":
        "bbdae2d5050a86614197c095ffde0c62715f6ee1282506c13de0c217897d3ba1",
    "wiki_53":
        "1859bff060bd23a109c4f5592e3799d35c811ee74819408f456538b85b75eaa2",
    "wiki_54":
        "b358764d1af98d27e4a2c47369b5c3abbe2e512a04743af0e74f708c45c927c1",
    "wiki_55":
        "14805f63ce3277510b6fcfa23b48479a86f6d4e2ce4ab9920455cb230e5f8e7f",
    "wiki_56":
        "f3d9a621be3b2c3a88496efe969a0cac4b941a245d29b93fd2a5bf709fb76e3d",
    "wiki_57":
        "a2f13d33363b750fb6655f23a9501879563c9b9afdf81266808fbd6e4432f1f8",
    "wiki_58":
        "bca64b183d835b99fbfac9e5b0a3b9000b11734eb2d503a3807ed9231480770c",
    "wiki_59":
        "14d472c941508fb684ea84e8f69802816626eb1a9a0bfa821a0d5a2e53e0563c",
    "wiki_60":
        "89fe0de683e867ec804d59578cda4041fb47b8dceaffbe82a455e3540c81bc0c",
    "wiki_61":
        "004e6b8ce0a6d06fcd35f46dfab9400ed1c0704c323a2b8d4b1fcdac47833e87",
    "wiki_62":
        "8e96fc1161179a5832a5864e0767df47d5d5b3628e5fcb666abdbce2ef83c675",
    "wiki_63":
        "0eb7f3f22b046ad1dddac2e37ea2b2e17459451763e91e73709174bc8925318f",
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


def read_sources(
    source_dirs: Union[str, Sequence[str]],
    sources: Optional[Dict[str, str]] = None) -> List[str]:
  """Texts of the upstream files, in name order, after checking their sha256.

  Args:
    source_dirs: folder(s) holding the files; each file is taken from the
      first folder that has it.
    sources: file name -> sha256; default the ten files of the embedded
      corpus.
  """
  if isinstance(source_dirs, str):
    source_dirs = [source_dirs]
  sources = SOURCE_SHA256 if sources is None else sources
  texts = []
  for name, expected in sorted(sources.items()):
    candidates = [os.path.join(d, name) for d in source_dirs]
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
      raise FileNotFoundError(
          f"Wikipedia source file {' or '.join(candidates)} is missing; "
          f"pass the folder(s) holding {min(sources)} ... {max(sources)} "
          "(WikiExtractor output of Vibhas-hs-edu/WikiTasks text/AA/, see "
          "switch_mtf/tasks/data/wiki/SOURCE.md) as --source_dir.")
    with open(path, "rb") as f:
      data = f.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
      raise ValueError(
          f"{path} has sha256 {actual}, expected {expected}: it is not the "
          "upstream file the corpus is built from.")
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


def build_corpus(
    source_dirs: Union[str, Sequence[str]], output_dir: str,
    sources: Optional[Dict[str, str]] = None,
    expected_sha256: Optional[Dict[str, str]] = None) -> Tuple[str, str]:
  """Writes the cleaned train/validation files; returns their paths.

  Both files are written beside their final names and renamed into place
  only when complete (and, with `expected_sha256`, only when they are the
  expected bytes), so an interrupted or wrong build never leaves a corpus
  a task would read.
  """
  train, validation = clean_corpus(read_sources(source_dirs, sources))
  files = {TRAIN_FILE: articles_to_gzip(train),
           VALIDATION_FILE: articles_to_gzip(validation)}
  for name, data in files.items():
    actual = hashlib.sha256(data).hexdigest()
    if expected_sha256 and actual != expected_sha256[name]:
      raise ValueError(
          f"The rebuilt {name} has sha256 {actual}, expected "
          f"{expected_sha256[name]}: the cleaning rules or the sources "
          "differ from those the corpus was defined with.")
  os.makedirs(output_dir, exist_ok=True)
  for name, data in files.items():
    with open(os.path.join(output_dir, name + ".partial"), "wb") as f:
      f.write(data)
  written = [os.path.join(output_dir, name) for name in files]
  for path in written:
    os.replace(path + ".partial", path)
  return written[0], written[1]


def file_sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()
