"""Fuzzing the embedded tasks' readers with random and malformed input.

Valid rows of the shipped SuperGLUE files are mutated (a field dropped,
added or given a random JSON value, the line cut short, replaced by other
JSON or garbage, given invalid UTF-8) and written among valid rows; files
are emptied, gzip-damaged or removed. The readers the local tasks use must
then either raise ValueError / FileNotFoundError whose message names the
file and, for a bad row, its line, or return examples exactly as TFDS would
type them. Any other exception is a crash without a usable message. A row
that cannot be valid (a required field dropped, cut short, not an object,
garbage, invalid UTF-8) must raise; an added field must be ignored.
"""

import collections
import gzip
import json
import os
import random
import zlib

import pytest

from switch_mtf.tasks import paths
from switch_mtf.tasks import readers
from switch_mtf.tasks import superglue
from switch_mtf.tasks import superglue_rows
from switch_mtf.tasks import wiki_corpus
from switch_mtf.training import preflight

CASES = 300  # per category
CONFIGS = {"boolq": "BoolQ", "cb": "CB", "copa": "COPA", "rte": "RTE",
           "wsc.fixed": "WSC"}
INT_FEATURES = ("span1_index", "span2_index")


@pytest.fixture(scope="module", name="seed_rows")
def fixture_seed_rows():
  return {config: [row for _, row in readers.read_jsonl(os.path.join(
      paths.SUPERGLUE_DIR, task_dir, "train.jsonl.gz"))][:10]
          for config, task_dir in CONFIGS.items()}


def _random_scalar(rng):
  return rng.choice([None, True, False, 0, 1, -3, 2.5, 10**30, "", "x",
                     "neutral", "True"])


def _random_container(rng):
  return rng.choice([[], [1, "a"], {}, {"a": 1}, [[0]], {"label": 0}])


def _mutated_rows(rng, seed_rows, mutate):
  """(config, lines, index of the mutated line) with 2-5 valid rows."""
  config = rng.choice(sorted(CONFIGS))
  rows = rng.sample(seed_rows[config], rng.randint(2, 5))
  lines = [json.dumps(row).encode() for row in rows]
  bad = rng.randrange(len(lines))
  lines[bad] = mutate(rng, json.loads(lines[bad]))
  return config, lines, bad


def _field_owner(rng, row):
  """The row, or WSC's nested `target` object, to mutate a field of."""
  if isinstance(row.get("target"), dict) and rng.random() < 0.5:
    return row["target"]
  return row


def _drop_field(rng, row):
  owner = _field_owner(rng, row)
  del owner[rng.choice(sorted(owner))]
  return json.dumps(row).encode()


def _add_field(rng, row):
  _field_owner(rng, row)["extra_%d" % rng.randrange(9)] = _random_scalar(rng)
  return json.dumps(row).encode()


def _scalar_value(rng, row):
  owner = _field_owner(rng, row)
  owner[rng.choice(sorted(owner))] = _random_scalar(rng)
  return json.dumps(row).encode()


def _container_value(rng, row):
  owner = _field_owner(rng, row)
  owner[rng.choice(sorted(owner))] = _random_container(rng)
  return json.dumps(row).encode()


def _cut_line(rng, row):
  text = json.dumps(row).encode()
  return text[:rng.randrange(1, len(text) - 1)]


def _other_json(rng, row):
  del row
  return json.dumps(rng.choice(
      [[1, 2], "text", 3, None, True, [{"idx": 1}]])).encode()


def _garbage(rng, row):
  del row
  alphabet = "{}[]\":,abc 123\\\t"
  return "".join(rng.choice(alphabet)
                 for _ in range(rng.randint(1, 40))).strip().encode() or b"x"


def _invalid_utf8(rng, row):
  text = json.dumps(row).encode()
  at = rng.randrange(len(text))
  return text[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\x80", b"\xed\xa0"
                                 b"\x80"]) + text[at:]


def _write(path, lines, compress):
  data = b"".join(line + b"\n" for line in lines)
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if compress else data)
  return path


def _assert_well_formed(config, examples, expected_count):
  """Examples typed as TFDS's super_glue builder types them."""
  builder = superglue.BUILDER_CONFIGS[config]
  assert len(examples) == expected_count
  for example in examples:
    assert set(example) == set(builder.features) | {"idx", "label"}
    for name in builder.features:
      expected = int if name in INT_FEATURES else str
      assert type(example[name]) is expected, (name, example)  # pylint: disable=unidiomatic-typecheck
    assert type(example["idx"]) is int  # pylint: disable=unidiomatic-typecheck
    assert example["label"] in range(len(builder.label_classes))


def _read(config, path, bad_line, expected_rows):
  """Reads as the local tasks do; asserts the reader's contract.

  Returns "raised" or "read", for the caller to check against what the
  mutation allows.
  """
  try:
    examples = superglue_rows.read_examples(config, path)
  except (ValueError, FileNotFoundError) as e:
    where = "%s:%d:" % (path, bad_line) if bad_line else path
    assert where in str(e), "%s lacks %r" % (e, where)
    return "raised"
  _assert_well_formed(config, examples, expected_rows)
  return "read"


# Mutation -> the outcomes it allows. A random scalar may or may not be a
# valid value ("neutral" is a CB label), so it may go either way, but the
# fuzzing must hit both; no field accepts a container.
ROW_MUTATIONS = {
    _drop_field: {"raised"},
    _add_field: {"read"},
    _scalar_value: {"raised", "read"},
    _container_value: {"raised"},
    _cut_line: {"raised"},
    _other_json: {"raised"},
    _garbage: {"raised"},
    _invalid_utf8: {"raised"},
}


@pytest.mark.parametrize("mutate", sorted(ROW_MUTATIONS,
                                          key=lambda f: f.__name__))
def test_malformed_rows_fail_with_file_and_line(mutate, seed_rows, tmp_path):
  rng = random.Random(mutate.__name__)
  outcomes = []
  for case in range(CASES):
    config, lines, bad = _mutated_rows(rng, seed_rows, mutate)
    compress = rng.random() < 0.5
    path = _write(str(tmp_path / ("%d.jsonl%s" % (case, ".gz" * compress))),
                  lines, compress)
    outcome = _read(config, path, bad + 1, len(lines))
    assert outcome in ROW_MUTATIONS[mutate], (outcome, lines[bad])
    outcomes.append(outcome)
  assert set(outcomes) == ROW_MUTATIONS[mutate], collections.Counter(outcomes)


def _damaged_gzip(rng, lines):
  data = gzip.compress(b"".join(line + b"\n" for line in lines))
  kind = rng.randrange(3)
  if kind == 0:
    return data[:rng.randrange(1, len(data) - 8)]  # truncated
  if kind == 1:
    at = rng.randrange(10, len(data) - 8)  # a flipped byte in the body
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
  return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))


def _damaged_files(rng, seed_rows, tmp_path):
  for case in range(CASES):
    config = rng.choice(sorted(CONFIGS))
    path = str(tmp_path / ("%d.jsonl.gz" % case))
    with open(path, "wb") as f:
      f.write(_damaged_gzip(rng, [json.dumps(r).encode()
                                  for r in seed_rows[config]]))
    yield config, path


def test_damaged_gzip_files_are_named_by_preflight(seed_rows, tmp_path):
  rng = random.Random("gzip")
  for _, path in _damaged_files(rng, seed_rows, tmp_path):
    problems = preflight.gzip_problems([path])
    assert len(problems) == 1 and problems[0].startswith(
        path + " is a damaged gzip file")


def test_damaged_gzip_files_are_named_by_the_reader(seed_rows, tmp_path):
  rng = random.Random("gzip")
  for config, path in _damaged_files(rng, seed_rows, tmp_path):
    try:
      _read(config, path, None, len(seed_rows[config]))
    except (EOFError, OSError, zlib.error) as e:
      raise AssertionError("%s: %r" % (path, e)) from e


def test_empty_and_missing_files_are_named(tmp_path):
  for case, content in enumerate([b"", b"\n", b"\n \n\t\n"] * 20):
    for compress in (False, True):
      path = str(tmp_path / ("%d.jsonl%s" % (case, ".gz" * compress)))
      with open(path, "wb") as f:
        f.write(gzip.compress(content) if compress else content)
      with pytest.raises(ValueError, match="%s is empty" % path):
        readers.read_jsonl(path)
  for task_dir in CONFIGS.values():
    for split in ("train", "validation"):
      with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        readers.split_file(str(tmp_path / "nope"), task_dir, split)
      with pytest.raises(FileNotFoundError, match=str(tmp_path / task_dir)):
        readers.split_file(str(tmp_path), task_dir, split)


def test_damaged_wiki_corpus_is_named(tmp_path):
  # TensorFlow reads a truncated gzip corpus up to the damage, silently;
  # pre-flight reads every file to its end.
  with open(os.path.join(paths.WIKI_DIR, "validation.tsv.gz"), "rb") as f:
    corpus = f.read()
  rng = random.Random("wiki")
  for case in range(CASES // 3):
    path = str(tmp_path / ("%d.tsv.gz" % case))
    cut = rng.randrange(1, len(corpus) - 8)
    with open(path, "wb") as f:
      f.write(corpus[:cut])
    assert preflight.gzip_problems([path])[0].startswith(path)
    # The reader of the corpus tools (whole file) raises, if not by name.
    with pytest.raises((EOFError, OSError, ValueError)):
      wiki_corpus.read_corpus_lines(path)

