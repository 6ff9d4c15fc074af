"""tools/run_tests.py: every module in its own pytest process, failures named."""

import json
import os

import pytest

from tests import repo_paths

run_tests = repo_paths.load_tool("run_tests")

PASSING = "def test_a():\n  assert 1 + 1 == 2\n"
FAILING = "def test_b():\n  assert 'x' == 'y', 'the failing module'\n"
ONLY_SLOW = ("import pytest\n\n@pytest.mark.slow\n"
             "def test_c():\n  assert False\n")
# Module state must not leak: each module sees a fresh interpreter.
LEAK_SET = "import os\nos.environ['LEAK'] = '1'\ndef test_d():\n  pass\n"
LEAK_READ = ("import os\ndef test_e():\n"
             "  assert 'LEAK' not in os.environ\n")


def _suite(tmp_path, **modules):
  for name, text in modules.items():
    (tmp_path / ("test_%s.py" % name)).write_text(text)
  return [str(tmp_path)]


def test_failures_are_named_and_deselected_modules_pass(tmp_path, capsys,
                                                       monkeypatch):
  monkeypatch.setattr(run_tests, "DURATIONS_FILE",
                      str(tmp_path / "durations.json"))
  paths = _suite(tmp_path, a=PASSING, b=FAILING, c=ONLY_SLOW, d=LEAK_SET,
                 e=LEAK_READ)
  # These modules stand in for the whole suite (--record takes no paths).
  find_modules = run_tests.find_modules
  monkeypatch.setattr(run_tests, "find_modules",
                      lambda unused_paths: find_modules(paths))
  assert run_tests.main(["--jobs=2", "--record"]) == 1
  out = capsys.readouterr().out
  assert "FAILED modules: " in out
  failed = out.split("FAILED modules: ")[1].split()
  assert [os.path.basename(m) for m in failed] == ["test_b.py"]
  assert "the failing module" in out  # its output is shown
  recorded = json.load(open(tmp_path / "durations.json"))["not slow"]
  # The all-deselected module passes and records no time.
  assert sorted(os.path.basename(m) for m in recorded) == [
      "test_a.py", "test_b.py", "test_d.py", "test_e.py"]


def test_record_refuses_test_paths(tmp_path, capsys, monkeypatch):
  # A record of some modules would replace the suite's whole record.
  durations = tmp_path / "durations.json"
  monkeypatch.setattr(run_tests, "DURATIONS_FILE", str(durations))
  paths = _suite(tmp_path, a=PASSING)
  with pytest.raises(SystemExit) as stopped:
    run_tests.main([*paths, "--record"])
  assert stopped.value.code == 2
  assert "--record times the whole suite" in capsys.readouterr().err
  assert not durations.exists()


def test_modules_with_only_slow_tests_are_not_started_by_make_test(
    tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(run_tests, "DURATIONS_FILE",
                      str(tmp_path / "durations.json"))
  # Started, either would fail at import; only the mixed module runs.
  broken = "raise SystemExit('started')\n"
  paths = _suite(
      tmp_path, a=PASSING,
      m=broken + "import pytest\npytestmark = [pytest.mark.slow]\n"
      "def test_m():\n  pass\n",
      f=broken + ONLY_SLOW + "class TestF:\n  @pytest.mark.slow\n"
      "  def test_f(self):\n    pass\n",
      x=ONLY_SLOW + PASSING)
  assert run_tests.main([*paths, "--jobs=1", "--verbose"]) == 0
  out = capsys.readouterr().out
  assert "2 test modules, 1 at a time, marks 'not slow'" in out
  assert "; 2 more with only slow tests not started" in out
  assert "1 passed, 1 deselected" in out  # test_x.py
  # The whole suite starts them (and they fail at import).
  assert run_tests.main([*paths, "--marks=", "--jobs=1"]) == 1
  failed = capsys.readouterr().out.split("FAILED modules: ")[1].split()
  assert sorted(os.path.basename(m) for m in failed) == [
      "test_f.py", "test_m.py", "test_x.py"]


def test_a_module_with_one_slow_case_per_test_still_runs(tmp_path):
  # A slow pytest.param marks that case only: the other cases are fast.
  path = tmp_path / "test_p.py"
  path.write_text(
      "import pytest\n"
      "@pytest.mark.parametrize('n', [1, pytest.param(2, marks="
      "pytest.mark.slow)])\ndef test_p(n):\n  pass\n")
  assert not run_tests.every_test_is_slow(str(path))
  path.write_text("import pytest\n@pytest.mark.slow\n"
                  "@pytest.mark.parametrize('n', [1, 2])\n"
                  "def test_p(n):\n  pass\n")
  assert run_tests.every_test_is_slow(str(path))


def test_every_mark_runs_with_empty_marks(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(run_tests, "DURATIONS_FILE",
                      str(tmp_path / "durations.json"))
  paths = _suite(tmp_path, a=PASSING, c=ONLY_SLOW)
  assert run_tests.main([*paths, "--marks=", "--jobs=1"]) == 1
  failed = capsys.readouterr().out.split("FAILED modules: ")[1].split()
  assert [os.path.basename(m) for m in failed] == ["test_c.py"]


def test_longest_recorded_module_starts_first(tmp_path, monkeypatch):
  monkeypatch.setattr(run_tests, "DURATIONS_FILE",
                      str(tmp_path / "durations.json"))
  modules = ["a.py", "b.py", "c.py"]
  run_tests.save_durations("not slow", {"a.py": 1.0, "b.py": 9.0})
  started = []
  class Fake:
    def __init__(self, module, *unused):
      started.append(module)
      self.module = module
      self.proc = self
    def poll(self):
      return 0
    def finish(self):
      return 0.0, 0, "1 passed"
  monkeypatch.setattr(run_tests, "_Running", Fake)
  run_tests.run(modules, "not slow", 1, [], False)
  # c has no record (assumed long), then b (9 s), then a (1 s).
  assert started == ["c.py", "b.py", "a.py"]
