"""README's test-time section and the distillation findings' spread."""

import json
import os
import shutil

import pytest

from switch_mtf.bench.documents import runs_text
from switch_mtf.bench.documents import testsuite_text
from tests import repo_paths


def _repo_with_tests(root, modules):
  """root with tools/run_tests.py and the given test modules {path: text}."""
  os.makedirs(os.path.join(root, "tools"))
  shutil.copyfile(os.path.join(repo_paths.REPO_DIR, testsuite_text.RUNNER),
                  os.path.join(root, testsuite_text.RUNNER))
  for module, text in modules.items():
    os.makedirs(os.path.dirname(os.path.join(root, module)), exist_ok=True)
    with open(os.path.join(root, module), "w") as f:
      f.write(text)


_TEST = "def test_a():\n  pass\n"
_SLOW = "import pytest\npytestmark = [pytest.mark.slow]\n" + _TEST


def test_module_times_sum_each_suite_and_halve_it(tmp_path):
  _repo_with_tests(str(tmp_path), {
      "tests/a/test_x.py": _TEST, "tests/b/test_y.py": _TEST,
      "tests/c/test_z.py": _SLOW, "tests/d/test_w.py": _TEST})
  with open(tmp_path / testsuite_text.DURATIONS_FILE, "w") as f:
    json.dump({"not slow": {"tests/a/test_x.py": 100.0,
                            "tests/b/test_y.py": 20.0,
                            "tests/d/test_w.py": 1.0},
               "all": {"tests/a/test_x.py": 3000.0,
                       "tests/b/test_y.py": 600.0,
                       "tests/c/test_z.py": 60.0,
                       "tests/d/test_w.py": 1.0}}, f)
  lines = testsuite_text.module_times(str(tmp_path))
  # One module takes longer than half the sum: it bounds the wall-clock.
  assert "| `make test` | 3 of 3 | 2:01 | 1:40 | `test_x.py` 1:40, " \
         "`test_y.py` 0:20, `test_w.py` 0:01 |" in lines
  # Three longest only; hours once the sum passes one.
  assert "| `make test-all` | 4 of 4 | 1:01:01 | 50:00 | `test_x.py` " \
         "50:00, `test_y.py` 10:00, `test_z.py` 1:00 |" in lines
  assert not any("without a recorded time" in line for line in lines)


def test_module_times_say_which_current_modules_the_record_lacks(tmp_path):
  # The record went stale: modules were added (and one removed) since.
  new = {"tests/e/test_new%d.py" % i: _TEST for i in range(11)}
  _repo_with_tests(str(tmp_path), dict(
      new, **{"tests/a/test_x.py": _TEST, "tests/b/test_y.py": _TEST}))
  with open(tmp_path / testsuite_text.DURATIONS_FILE, "w") as f:
    json.dump({"not slow": {"tests/a/test_x.py": 100.0,
                            "tests/gone/test_old.py": 500.0},
               "all": {"tests/a/test_x.py": 30.0,
                       "tests/b/test_y.py": 20.0,
                       "tests/e/test_new0.py": 10.0}}, f)
  lines = testsuite_text.module_times(str(tmp_path))
  # The removed module's time is not summed.
  assert "| `make test` | 1 of 13 | 1:40 | 1:40 | `test_x.py` 1:40 |" \
         in lines
  assert "| `make test-all` | 3 of 13 | 1:00 | 0:30 | `test_x.py` 0:30, " \
         "`test_y.py` 0:20, `test_new0.py` 0:10 |" in lines
  assert lines[-1].endswith(
      ": `make test`: 12 modules; `make test-all`: `test_new1.py`, "
      "`test_new10.py`, `test_new2.py`, `test_new3.py`, `test_new4.py`, "
      "`test_new5.py`, `test_new6.py`, `test_new7.py`, `test_new8.py`, "
      "`test_new9.py`.")


def test_module_times_without_a_record_say_how_to_make_one(tmp_path):
  (line,) = testsuite_text.module_times(str(tmp_path))
  assert "--record" in line


def _distill_record(root, spread_sentence=(
    "At this size repeated Switch runs differ by 0.02–0.2 in validation "
    "cross-entropy (anchor measurements).")):
  folder = os.path.join(root, "demo")
  os.makedirs(folder)
  with open(os.path.join(folder, "record.json"), "w") as f:
    json.dump({}, f)
  with open(os.path.join(folder, "distill_report.md"), "w") as f:
    f.write("| a |\n|---|\n| 1 |\n\n"
            "- The teacher is not better (+0.011). " + spread_sentence +
            "\n- Another finding.\n\nPaper, Table 6\n"
            "- not a finding\n")
  return runs_text.RunRecord(folder)


def test_the_unsourced_spread_is_replaced_by_the_committed_one(tmp_path):
  run = _distill_record(str(tmp_path))
  assert runs_text.distill_findings(run) == [
      "- The teacher is not better (+0.011). At this size repeated Switch "
      "runs differ by 0.02–0.2 in validation cross-entropy (anchor "
      "measurements).", "- Another finding."]
  first, second = runs_text.distill_findings(
      run, spread=lambda: "the 3 seeds of `x` end 0.073 apart")
  assert "0.02" not in first and "anchor" not in first
  assert first.startswith("- The teacher is not better (+0.011). How much ")
  assert "the 3 seeds of `x` end 0.073 apart" in first
  assert second == "- Another finding."


def test_a_spread_sentence_worded_otherwise_is_an_error_not_kept(tmp_path):
  # The unsourced figure used to stay in the document unnoticed.
  run = _distill_record(str(tmp_path), spread_sentence=(
      "Repeated Switch runs differ by 0.02-0.2 here (anchor measurements)."))
  with pytest.raises(ValueError, match="the report's wording changed"):
    runs_text.distill_findings(run, spread=lambda: "unused")
  assert len(runs_text.distill_findings(run)) == 2  # without spread: as is
