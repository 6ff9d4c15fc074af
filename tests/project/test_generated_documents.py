"""The committed documents say what tools/write_docs.py writes from results/.

A changed result file, or a hand edit inside a generated section, fails the
first test; a measured number typed by hand outside the sections fails the
second.
"""

import json
import os
import re
import shutil

import pytest

from switch_mtf.bench.documents import markers
from switch_mtf.bench.documents import sections
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


def test_a_changed_result_makes_the_check_fail(tmp_path):
  repo = str(tmp_path)
  shutil.copytree(os.path.join(repo_paths.REPO_DIR, "results"),
                  os.path.join(repo, "results"))
  os.makedirs(os.path.join(repo, "docs"))
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
