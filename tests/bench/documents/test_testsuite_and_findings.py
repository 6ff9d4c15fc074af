"""README's test-time section and the distillation findings' spread."""

import json
import os

from switch_mtf.bench.documents import runs_text
from switch_mtf.bench.documents import testsuite_text


def test_module_times_sum_each_suite_and_halve_it(tmp_path):
  os.makedirs(tmp_path / "tests")
  with open(tmp_path / testsuite_text.DURATIONS_FILE, "w") as f:
    json.dump({"not slow": {"tests/a/test_x.py": 100.0,
                            "tests/b/test_y.py": 20.0},
               "all": {"tests/a/test_x.py": 3000.0,
                       "tests/b/test_y.py": 600.0,
                       "tests/c/test_z.py": 60.0,
                       "tests/d/test_w.py": 1.0}}, f)
  lines = testsuite_text.module_times(str(tmp_path))
  assert "| `make test` | 2 | 2:00 | 1:00 | `test_x.py` 1:40, `test_y.py` " \
         "0:20 |" in lines
  # Three longest only; hours once the sum passes one.
  assert "| `make test-all` | 4 | 1:01:01 | 30:30 | `test_x.py` 50:00, " \
         "`test_y.py` 10:00, `test_z.py` 1:00 |" in lines


def test_module_times_without_a_record_say_how_to_make_one(tmp_path):
  (line,) = testsuite_text.module_times(str(tmp_path))
  assert "--record" in line


def _distill_record(root):
  folder = os.path.join(root, "demo")
  os.makedirs(folder)
  with open(os.path.join(folder, "record.json"), "w") as f:
    json.dump({}, f)
  with open(os.path.join(folder, "distill_report.md"), "w") as f:
    f.write("| a |\n|---|\n| 1 |\n\n"
            "- The teacher is not better (+0.011). At this size repeated "
            "Switch runs differ by 0.02–0.2 in validation cross-entropy "
            "(anchor measurements).\n- Another finding.\n\nPaper, Table 6\n"
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
