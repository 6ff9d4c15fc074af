"""Every measuring bench invocation records its wall-clock time and load."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from switch_mtf.bench import suite
from switch_mtf.bench.common import invocations
from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.speed import scaling
from tests import repo_paths


def test_record_appends(tmp_path):
  root = str(tmp_path / "results")
  assert invocations.load(root) == []
  invocations.record(root, {"command": "a"})
  invocations.record(root, {"command": "b"})
  with open(os.path.join(root, invocations.FILE)) as f:
    assert [e["command"] for e in json.load(f)] == ["a", "b"]


def test_run_records_its_invocation_but_report_only_does_not(tmp_path):
  results = tmp_path / "results"
  os.makedirs(results / "speed")
  # Stored entries are kept (fresh or stale), so nothing is measured again.
  shutil.copyfile(os.path.join(repo_paths.REPO_DIR, "results", "speed",
                               "paper.json"), results / "speed" / "paper.json")
  options = suite.Options(results_dir=str(results), parts=["paper"],
                          command="python tools/bench.py --parts=paper")
  suite.run(options, log=lambda message: None)
  suite.run(suite.Options(results_dir=str(results), parts=["paper"],
                          report_only=True), log=lambda message: None)
  recorded = invocations.load(str(results))
  assert len(recorded) == 1
  entry = recorded[0]
  assert entry["command"] == "python tools/bench.py --parts=paper"
  assert entry["parts"] == ["paper"]
  assert entry["wall_seconds"] >= 0
  assert entry["outcome"] == "completed" and "error" not in entry
  assert entry["results_stored"] == 0  # every entry was kept
  assert not entry["quick"] and not entry["filtered"]
  assert not entry["whole_bench"]  # one part of five
  assert 0 <= entry["load"]["other_cpu_share_mean"] <= 1
  assert len(entry["commit"]) == 40


def _stop_at_second_model(monkeypatch, stop):
  """scaling.paper_model that stores one entry, then raises `stop`."""
  calls = []
  def paper_model(label, gin_files, **unused_kwargs):
    calls.append(label)
    if len(calls) > 1:
      raise stop
    return {"label": label, "gin_files": list(gin_files), "error": "fake"}
  monkeypatch.setattr(scaling, "paper_model", paper_model)


@pytest.mark.parametrize("stop,outcome,error", [
    (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt"),
    (RuntimeError("boom"), "failed", "RuntimeError: boom")])
def test_an_invocation_that_does_not_finish_is_recorded_too(
    tmp_path, monkeypatch, stop, outcome, error):
  # It used to be recorded only after every part returned: an interrupted
  # `tools/bench.py` left no trace of the time it took.
  _stop_at_second_model(monkeypatch, stop)
  results = str(tmp_path / "results")
  with pytest.raises(type(stop)):
    suite.run(suite.Options(results_dir=results, parts=["paper"],
                            command="python tools/bench.py --parts=paper"),
              log=lambda message: None)
  [entry] = invocations.load(results)
  assert entry["outcome"] == outcome and entry["error"] == error
  assert entry["results_stored"] == 1  # the first model's, kept on disk
  assert entry["parts"] == ["paper"] and entry["wall_seconds"] >= 0
  with open(os.path.join(results, "speed", "paper.json")) as f:
    assert list(json.load(f)["entries"]) == [suite.PAPER_MODELS[0][0]]


def test_an_invocation_ended_by_sigterm_is_recorded_then_ends(tmp_path):
  # `kill <pid>` is how a long bench is usually stopped: the record is
  # written, then the process ends by the signal as it did before.
  results = str(tmp_path / "results")
  script = textwrap.dedent("""
      import os, signal, sys, time
      from switch_mtf.bench import suite
      from switch_mtf.bench.speed import scaling
      def paper_model(label, gin_files, **unused_kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
      scaling.paper_model = paper_model
      suite.run(suite.Options(results_dir=sys.argv[1], parts=["paper"],
                              command="bench"), log=lambda message: None)
      """)
  done = subprocess.run([sys.executable, "-c", script, results],
                        cwd=repo_paths.REPO_DIR, timeout=120,
                        capture_output=True, text=True, check=False)
  assert done.returncode == -signal.SIGTERM, done.stderr[-2000:]
  [entry] = invocations.load(results)
  assert entry["outcome"] == "interrupted" and entry["error"] == "SIGTERM"
  assert entry["results_stored"] == 0 and entry["command"] == "bench"


def _run_paper_in_a_process(results, setup):
  """Runs the paper part in a new process after `setup` (code that patches
  scaling.paper_model and invocations.record); the finished process."""
  script = textwrap.dedent("""
      import os, signal, sys, time
      from switch_mtf.bench import suite
      from switch_mtf.bench.common import invocations
      from switch_mtf.bench.speed import scaling
      real_record = invocations.record
      """) + textwrap.dedent(setup) + textwrap.dedent("""
      suite.run(suite.Options(results_dir=sys.argv[1], parts=["paper"],
                              command="bench"), log=lambda message: None)
      """)
  return subprocess.run([sys.executable, "-c", script, results],
                        cwd=repo_paths.REPO_DIR, timeout=120,
                        capture_output=True, text=True, check=False)


@pytest.mark.slow  # a TensorFlow process of its own
def test_a_sigterm_while_a_failure_is_recorded_waits_for_the_record(
    tmp_path):
  # It used to find the record "done" (marked before it was written) and
  # end the process at once: the invocation went unrecorded.
  results = str(tmp_path / "results")
  done = _run_paper_in_a_process(results, """
      def paper_model(label, gin_files, **unused_kwargs):
        raise RuntimeError("boom")
      def record(root, entry):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-record
        real_record(root, entry)
      scaling.paper_model = paper_model
      invocations.record = record
      """)
  assert done.returncode == -signal.SIGTERM, done.stderr[-2000:]
  [entry] = invocations.load(results)
  assert entry["outcome"] == "failed" and entry["error"] == "RuntimeError: boom"


@pytest.mark.slow  # a TensorFlow process of its own
def test_sigterm_ends_the_process_even_if_its_record_fails(tmp_path):
  # The record's exception used to escape the handler: the process then
  # went on (here: ended by that exception) instead of ending by the signal.
  results = str(tmp_path / "results")
  done = _run_paper_in_a_process(results, """
      def paper_model(label, gin_files, **unused_kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
      def record(root, entry):
        raise OSError("disk full")
      scaling.paper_model = paper_model
      invocations.record = record
      """)
  assert done.returncode == -signal.SIGTERM, done.stderr[-2000:]
  assert "OSError: disk full" in done.stderr  # said, not swallowed
  assert invocations.load(results) == []


def test_results_stored_meanwhile_by_other_threads_do_not_break_the_record(
    tmp_path):
  # Claim jobs put into their store from worker threads while the record
  # counts its entries: iterating the live entries raised RuntimeError.
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))

  class PutsWhileRead(dict):
    def get(self, key, default=None):
      store.put("another_%d" % len(list(store.items())), {})
      return super().get(key, default)

  store.put("a", {})
  store.put("b", {})
  store._data["entries"]["a"] = PutsWhileRead()  # pylint: disable=protected-access
  results = str(tmp_path / "results")
  options = suite.Options(results_dir=results, parts=["paper"])
  with suite._recorded_invocation(  # pylint: disable=protected-access
      options, ["paper"], {"claims": store}):
    pass
  [entry] = invocations.load(results)
  assert entry["outcome"] == "completed" and entry["results_stored"] == 0


def test_speed_summary_shows_the_parts_this_call_did_not_run(tmp_path):
  # A call with one part used to rewrite summary.md with that part only.
  results = tmp_path / "results"
  os.makedirs(results / "speed")
  for name in ("paper", "models"):
    shutil.copyfile(os.path.join(repo_paths.REPO_DIR, "results", "speed",
                                 name + ".json"),
                    results / "speed" / (name + ".json"))
  suite.run(suite.Options(results_dir=str(results), parts=["paper"],
                          report_only=True), log=lambda message: None)
  with open(results / "speed" / "summary.md") as f:
    summary = f.read()
  assert "## The paper's models on TPU layouts" in summary
  assert "## Whole training step: tiny/E4,8,16,32,64" in summary


def test_documents_sum_the_measured_pieces_of_make_bench(tmp_path):
  from switch_mtf.bench.documents import sections  # pylint: disable=g-import-not-at-top
  root = str(tmp_path)
  speed = {"parts": ["speed", "models", "paper", "profile", "cluster"],
           "filtered": False, "wall_seconds": 600.0, "whole_bench": False,
           "command": "python tools/bench.py --parts=...", "quick": False,
           "started": "2026-12-06 10:00:00", "results_stored": 3,
           "commit": "a" * 40, "dirty": False,
           "load": {"other_cpu_share_mean": 0.01, "other_cpu_share_max": 0.02}}
  invocations.record(root, speed)
  # A later, longer call of the same parts was stopped: listed as such,
  # never taken for the speed parts' time.
  invocations.record(root, dict(speed, wall_seconds=900.0, outcome=(
      "interrupted"), error="SIGTERM", started="2026-12-07 10:00:00",
                                results_stored=1))
  os.makedirs(os.path.join(root, "claims"))
  with open(os.path.join(root, "claims", "runs.json"), "w") as f:
    json.dump({"entries": {"a": {"train_seconds": 3000.0,
                                 "eval_seconds": 600.0},
                           "b": {"train_seconds": 1800.0}}}, f)
  lines = sections._invocations(root)  # pylint: disable=protected-access
  assert lines[2].split(" | ")[2] == "10:00"  # recorded before "outcome"
  assert lines[3].split(" | ")[2:4] == ["15:00 **interrupted** (SIGTERM)",
                                        "1"]
  assert lines[5] == (
      "1 invocation did not finish (marked **interrupted** or **failed** "
      "above): 15:00 of wall-clock in all. The results they stored count "
      "below with their own times; the rest of that time was lost work, not "
      "a piece of `make bench`.")
  assert lines[-1] == (
      "Measured pieces of it: the speed parts in one invocation, 10:00 "
      "(2026-12-06); the 2 stored claims runs, 1:30:00 summed (training + "
      "evaluation of each, under its recorded load); together 1:40:00 (a "
      "sum of run times: runs that trained side by side each count in "
      "full).")
