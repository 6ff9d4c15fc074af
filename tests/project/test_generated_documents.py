"""The committed documents say what tools/write_docs.py writes from results/.

A changed result file, or a hand edit inside a generated section, fails the
first test; a measured number typed by hand outside the sections fails the
next two: any decimal in the measured regions, and anywhere in README.md,
DATA.md and docs/*.md any number with a unit of time, size, speed, share or
ratio (12 s, 10 ms/step, 3 µs, 2.6 GB, 106 MB/s, 40%, 1.2x, 1.2 ×, 12:24)
that MEASUREMENT_ALLOWLIST does not name with its reason.
"""

import json
import os
import re
import shutil

import pytest

from switch_mtf.bench.documents import markers
from switch_mtf.bench.documents import sections
from switch_mtf.bench.documents import testsuite_text
from tests import repo_paths

# Hyper-parameters the prose names; any other decimal is a measurement.
CONFIG_VALUES = {"0.001", "0.01", "0.05", "0.1", "0.25", "0.4", "0.75", "1.0",
                 "1.25", "2.0", "2048.0"}
# (document, first heading of the measured region, where it ends or None).
MEASURED_REGIONS = [
    ("README.md", "## Measured results", "## Failure behaviour"),
    ("docs/results.md", "# Measured results", None),
    ("docs/demo.md", "## Measured on this machine", None),
    ("docs/distill.md", "### Measured", "Paper, Table 6"),
]
# A decimal number, not a section sign's (§3.1) or a version's (2.12.1).
_DECIMAL = re.compile(r"(?<![\w.§])\d+\.\d+(?![\w.])")

# A number (or range) with a unit of time, size, speed, share or ratio, or a
# clock time: what a measurement on this machine looks like in prose.
_NUMBER = r"\d+(?:[.,]\d+)*"
_SPAN = _NUMBER + r"(?:\s?(?:-|–|to)\s?" + _NUMBER + r")?"
_UNIT = (r"(?:GFLOP/s|TFLOP/s|steps/s|ex/s|tokens/s|MB/s|GB/s|KiB|MiB|GiB|"
         r"KB|kB|MB|GB|TB|bytes?|[µμu]s|ns|ms|sec|seconds?|s|min|minutes?|h|"
         r"hours?)")
# What a unit may be per: 10 ms/step, 64 MiB/shard.
_PER = r"(?:/[A-Za-z]+)?"
# A ratio written "1.2 ×", apart from a product ("4 × groups", "128 × 12"):
# a decimal, or followed by punctuation, the line's end or a comparison.
_SPACED_TIMES = (r"(?:\d+\.\d+\s×|" + _SPAN + r"\s×(?=\s*(?:$|[^\w\s(]|"
                 r"(?:faster|slower|more|less|fewer|longer|shorter|larger|"
                 r"smaller)\b)))(?!\s?\d)")
MEASUREMENT = re.compile(
    r"(?<![\w.§/:-])(?:"
    + _SPAN + r"\s?" + _UNIT + _PER + r"(?![\w/])"  # 65 s, 10 ms/step
    + r"|" + _SPAN + r"\s?%"                   # about 40%
    + r"|" + _SPAN + r"[x×](?!\w)(?!\s?\d)"    # 1.06x (not "128 x 12")
    + r"|" + _SPACED_TIMES                     # 1.2 × faster
    + r"|\d{1,3}:\d{2}(?::\d{2})?(?![\w:])"   # 12:24, 1:02:03
    + r")")
# (document or "*", a phrase of one line holding the number, why it is no
# measurement of ours). A number passes only inside its phrase.
MEASUREMENT_ALLOWLIST = [
    ("*", "95%", "the confidence level of the statistics"),
    ("README.md", "0.1× initialisation", "the paper's init scale, a setting"),
    ("README.md", "(5 MB)", "size of the committed switch_mtf/tasks/data "
     "(du -sh), a property of the repository"),
    ("README.md", "about 2.5 GB of weights", "size of the published "
     "google/switch-base-8 download, not measured here"),
    ("README.md", "more than 5% of the CPU", "the benchmark's busy-machine "
     "threshold, timing.MAX_OTHER_CPU_SHARE"),
    ("README.md", "within its 90 minutes", "CI's time limit (.ci/run)"),
    ("DATA.md", "about 5 MB, gzip", "size of the shipped "
     "switch_mtf/tasks/data, a property of the data"),
    ("DATA.md", "stubs under 200 bytes", "the corpus cleaning rule's "
     "threshold, a setting"),
    ("DATA.md", "5.4x the sample's article text", "the upstream files' size "
     "ratio, a property of the data"),
    ("DATA.md", "(20,111,242 bytes)", "the large corpus file's size, fixed "
     "by its sha256 (switch_mtf/tasks/wiki_large.py), a property of the "
     "data"),
    ("DATA.md", "(1,112,000 bytes)", "the large corpus file's size, fixed "
     "by its sha256, a property of the data"),
    ("DATA.md", "add 21 MB to the", "the two large corpus files' sizes "
     "summed, a property of the data"),
    ("DATA.md", "5 MB of shipped data", "size of the shipped data, a "
     "property of the data"),
    ("docs/models.md", "780 ex/s", "paper, Table 1"),
    ("docs/checkpoints.md", "64 MiB", "the --shard_mb default"),
    ("docs/checkpoints.md", "up to 32 MiB", "glibc's largest mmap threshold, "
     "a constant of glibc"),
    ("docs/checkpoints.md", "128 MiB shard", "the old code's shard size, a "
     "setting"),
    ("docs/checkpoints.md", "at least 100 MB/s", "the conversion's speed "
     "target"),
    ("docs/checkpoints.md", "plus 1 GB", "the conversion's memory target"),
    ("docs/checkpoints.md", "1.2 to 3.9 GB", "computed: parameters x 2 "
     "bytes"),
    ("docs/checkpoints.md", "29 GB in bfloat16", "computed: parameters x 2 "
     "bytes"),
    ("docs/checkpoints.md", "2.4 GB in float32", "computed: parameters x 4 "
     "bytes"),
    ("docs/checkpoints.md", "this machine's 24 GB", "the machine's memory, "
     "a hardware fact"),
    ("docs/checkpoints.md", "0.1× initialisation", "Mesh TF's init scale, a "
     "setting"),
    ("docs/cluster.md", "60 s", "connect_timeout_s's default and the message "
     "naming it"),
    ("docs/cluster.md", "(2 s)", "watch_interval_s's default"),
    ("docs/demo.md", "1.82 steps/s ETA 2:47 (all phases ~18:56) (elapsed "
     "4:47)", "an example of the progress line's format"),
    ("docs/distill.md", "3%", "paper, Table 6"),
    ("docs/distill.md", "20%", "paper, Table 6"),
    ("docs/distill.md", "29%", "paper, Table 6"),
    ("docs/models.md", "80-95%", "computed by tools/model_stats.py"),
    ("docs/models.md", "10-15% above Table 9", "computed by "
     "tools/model_stats.py against the paper"),
    ("docs/models.md", "within 4%", "computed by tools/model_stats.py "
     "against the paper"),
    ("docs/models.md", "1.06x", "computed by tools/model_stats.py"),
    ("docs/models.md", "+28%", "computed by tools/model_stats.py"),
    ("docs/models.md", "0.003%", "computed: parameter counts"),
    ("docs/results.md", "24 GiB", "the machine's memory, a hardware fact"),
    ("docs/results.md", "the last 10%", "the learning-rate schedule, a "
     "setting"),
    ("docs/results.md", "the issue's 10 hours", "issue 18's budget"),
    ("docs/results.md", "1.0× init", "the init scale, a setting"),
    ("docs/tasks.md", "15% noise", "T5's span-corruption setting"),
    ("docs/tasks.md", "5.4x the embedded text", "the corpus files' size "
     "ratio, a property of the data"),
]


def test_committed_documents_match_what_the_tool_writes():
  changed = sections.write(repo_paths.REPO_DIR, check=True)
  assert not changed, (
      "%s differ from what `python tools/write_docs.py` writes from "
      "results/; run it and commit the result." % changed)


def _region(name, first, last):
  with open(os.path.join(repo_paths.REPO_DIR, name)) as f:
    text = f.read()
  start = text.index(first)
  end = text.index(last, start) if last else len(text)
  return text[start:end]


@pytest.mark.parametrize("name,first,last", MEASURED_REGIONS)
def test_measured_regions_have_no_hand_typed_numbers(name, first, last):
  typed = [(line, number)
           for line in markers.unmarked_lines(_region(name, first, last))
           for number in _DECIMAL.findall(line)
           if number not in CONFIG_VALUES]
  assert not typed, "hand-typed numbers outside generated sections: %s" % (
      typed,)


def _hand_written_documents():
  docs = os.path.join(repo_paths.REPO_DIR, "docs")
  return ["README.md", "DATA.md"] + sorted(
      "docs/" + name for name in os.listdir(docs) if name.endswith(".md"))


def _read(name):
  with open(os.path.join(repo_paths.REPO_DIR, name)) as f:
    return f.read()


def _covers(entry, name, line, match):
  """Whether this one allowlist entry's phrase holds the match on its line."""
  document, phrase, _ = entry
  if document not in ("*", name):
    return False
  start = line.find(phrase)
  while start >= 0:
    if start <= match.start() and match.end() <= start + len(phrase):
      return True
    start = line.find(phrase, start + 1)
  return False


def _measurements(text):
  """(line number, match, line) of each number with a unit written by
  hand, i.e. outside the generated sections."""
  return [(number, m, line)
          for number, line in markers.numbered_unmarked_lines(text)
          for m in MEASUREMENT.finditer(line)]


def _typed(name, text, allowlist=None):
  """The hand-typed measurements of a document no allowlist entry holds."""
  allowlist = MEASUREMENT_ALLOWLIST if allowlist is None else allowlist
  return ["%s:%d: %r in %r" % (name, number, m.group(0), line.strip())
          for number, m, line in _measurements(text)
          if not any(_covers(e, name, line, m) for e in allowlist)]


def _unused(texts, allowlist=None):
  """Allowlist entries that, each by itself, hold no measurement of the
  documents ({name: text})."""
  allowlist = MEASUREMENT_ALLOWLIST if allowlist is None else allowlist
  used = {entry for name, text in texts.items()
          for _, m, line in _measurements(text)
          for entry in allowlist if _covers(entry, name, line, m)}
  return [entry[:2] for entry in allowlist if entry not in used]


@pytest.mark.parametrize("name", _hand_written_documents())
def test_no_hand_typed_measurement_anywhere(name):
  typed = _typed(name, _read(name))
  assert not typed, (
      "numbers with units typed by hand outside generated sections (generate "
      "them with tools/write_docs.py from results/, cite the committed file, "
      "drop them, or add them to MEASUREMENT_ALLOWLIST with the reason they "
      "are no measurement):\n" + "\n".join(typed))


def test_every_allowlist_entry_is_still_used():
  unused = _unused({name: _read(name) for name in _hand_written_documents()})
  assert not unused, "allowlist entries no document needs: %s" % unused


def test_the_check_fails_on_a_new_measurement_and_counts_entries_alone():
  assert "DATA.md" in _hand_written_documents()
  text = ("# Doc\nA level of 95% and 12 s.\n"
          "<!-- BEGIN GENERATED x: python tools/write_docs.py -->\n"
          "10 ms/step\n<!-- END GENERATED x -->\nNow 10 ms/step.\n")
  allowlist = [("*", "95%", "a"), ("README.md", "and 12", "b"),
               ("README.md", "12 s", "c"), ("docs/x.md", "95%", "d")]
  # Outside the generated section only, and none of the allowlist holds it.
  assert _typed("README.md", text, allowlist) == [
      "README.md:6: '10 ms/step' in 'Now 10 ms/step.'"]
  # "and 12" shares its line with an allowed number but holds none itself
  # (it used to count as used); "docs/x.md"'s document has no such line.
  assert _unused({"README.md": text}, allowlist) == [
      ("README.md", "and 12"), ("docs/x.md", "95%")]


def test_the_check_sees_measurements():
  for text in ("took 12:24", "2.6 GB", "65 s", "about 40%", "1.70x dense",
               "100-170 MB", "106.6 MB/s", "200 GFLOP/s", "1:02:03",
               "10 ms/step", "64 MiB/shard", "1.2 × faster", "1.2 ×.",
               "2 × slower", "1.2×", "3 µs", "3 μs", "40 us", "512 bytes",
               "20,111,242 bytes"):
    assert MEASUREMENT.search(text), text
  for text in ("128 x 12", "E8 s0", "v3-8", "3 seeds", "file:line",
               "§3.1", "2+2 layers", "1,600 sequences", "128 × 12",
               "4 × groups", "128 × the dense FFN", "4×4", "1.1B params"):
    assert not MEASUREMENT.search(text), text


def test_a_changed_result_makes_the_check_fail(tmp_path):
  repo = str(tmp_path)
  shutil.copytree(os.path.join(repo_paths.REPO_DIR, "results"),
                  os.path.join(repo, "results"))
  os.makedirs(os.path.join(repo, "docs"))
  # README's test times: the record, and the modules tools/run_tests.py finds.
  shutil.copytree(os.path.join(repo_paths.REPO_DIR, "tests"),
                  os.path.join(repo, "tests"),
                  ignore=shutil.ignore_patterns("__pycache__"))
  os.makedirs(os.path.join(repo, "tools"))
  shutil.copyfile(os.path.join(repo_paths.REPO_DIR, testsuite_text.RUNNER),
                  os.path.join(repo, testsuite_text.RUNNER))
  for name in sections.DOCUMENTS:
    shutil.copyfile(os.path.join(repo_paths.REPO_DIR, name),
                    os.path.join(repo, name))
  assert sections.write(repo, check=True) == []
  path = os.path.join(repo, "results", "claims", "runs.json")
  with open(path) as f:
    stored = json.load(f)
  # One seed's final validation loss of dense moves.
  evals = stored["entries"]["dense_s1"]["eval"]
  last = max(evals, key=int)
  evals[last]["neg_log_perplexity"] -= 0.4
  with open(path, "w") as f:
    json.dump(stored, f)
  assert "README.md" in sections.write(repo, check=True)
