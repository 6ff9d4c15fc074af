"""Provenance: code and gin hashes, git state, machine load, staleness."""

import os
import shutil
import subprocess
import sys
import time

from switch_mtf.bench.common import provenance
from tests import repo_paths

_BUSY = "import time\nend = time.time() + %f\nwhile time.time() < end: pass\n"


def test_code_hash_follows_the_files(tmp_path):
  package = tmp_path / "switch_mtf"
  shutil.copytree(os.path.join(repo_paths.REPO_DIR, "switch_mtf", "layer"),
                  package / "layer", ignore=shutil.ignore_patterns("*.pyc"))
  before = provenance.code_hash(["layer"], str(package))
  assert provenance.code_hash(["layer"], str(package)) == before
  with open(package / "layer" / "router.py", "a") as f:
    f.write("# changed\n")
  changed = provenance.code_hash(["layer"], str(package))
  assert changed != before
  # Same size, new bytes: file contents are cached per version, not per path
  # (after a pause longer than the file system's timestamp granularity).
  time.sleep(0.05)
  router = package / "layer" / "router.py"
  router.write_text(router.read_text().replace("# changed\n", "# CHANGED\n"))
  assert provenance.code_hash(["layer"], str(package)) not in (before,
                                                              changed)


def test_gin_files_follow_includes():
  records = provenance.gin_files(["distill/init_only.gin"])
  assert set(records) == {"distill/init_only.gin",
                          "distill/every_other_switch.gin"}
  for record in records.values():
    assert record["text"] in open(record["path"]).read()
    assert len(record["sha256"]) == 64


def test_gin_files_of_flags():
  assert provenance.gin_files_of_flags(
      ["--model_dir=x", "--gin_file=dataset.gin",
       "--gin_param=a=1", "--gin_file=models/t5_tiny.gin"]) == [
           "dataset.gin", "models/t5_tiny.gin"]


def test_git_state_names_the_checked_out_commit():
  head = subprocess.run(["git", "-C", repo_paths.REPO_DIR, "rev-parse",
                         "HEAD"], capture_output=True, text=True,
                        check=True).stdout.strip()
  state = provenance.git_state()
  assert state["commit"] == head and isinstance(state["dirty"], bool)


def test_a_current_record_is_fresh_and_a_changed_one_is_stale():
  stored = provenance.record("python tools/bench.py", ["models/t5_tiny.gin"],
                             provenance.CLI_CODE)
  assert stored["machine"]["cores"] == os.cpu_count()
  with open("/proc/cpuinfo") as f:
    flags = next(line for line in f if line.startswith("flags")).split()
  # Exactly the speed-deciding extensions this CPU has, read independently.
  assert stored["machine"]["cpu_flags"] == sorted(
      f for f in provenance.SPEED_CPU_FLAGS if f in flags)
  assert provenance.stale_reasons(stored) == []
  stored["gin_files"]["models/t5_tiny.gin"]["sha256"] = "0" * 64
  stored["code_sha256"] = "0" * 64
  assert provenance.stale_reasons(stored) == [
      "code of layer, tasks, cli, training changed",
      "gin file models/t5_tiny.gin changed"]
  assert provenance.stale_reasons(None) == ["recorded without provenance"]


def _measure(detached: bool, tmp_path, seconds: float = 2.0):
  """(summary, CPU share the busy loop used) while one loop runs.

  The loop is our child, or detached (the shell exits at once, so the loop
  is nobody's child of ours). Its own CPU time, written when it ends, is
  what the monitor must attribute: robust to whatever else runs.
  """
  out = tmp_path / ("detached.txt" if detached else "child.txt")
  script = (_BUSY % seconds) + (
      "open(%r, 'w').write(str(time.process_time()))\n" % str(out))
  start = time.monotonic()
  with provenance.LoadMonitor(interval=0.2) as monitor:
    if detached:
      subprocess.run(["sh", "-c", "%s -c \"$0\" &" % sys.executable, script],
                     check=True)
    else:
      child = subprocess.Popen([sys.executable, "-c", script])
    while not out.exists():
      time.sleep(0.05)
    if not detached:
      child.wait()
  wall = time.monotonic() - start
  used = float(out.read_text()) / (wall * os.cpu_count())
  return monitor.summary(), used


def test_load_monitor_counts_other_processes_not_our_children(tmp_path):
  summary, used = _measure(detached=False, tmp_path=tmp_path)
  assert summary["own_cpu_share_mean"] > 0.7 * used, (summary, used)
  summary, used = _measure(detached=True, tmp_path=tmp_path)
  assert summary["other_cpu_share_mean"] > 0.7 * used, (summary, used)
  assert summary["own_cpu_share_mean"] < 0.3 * used, (summary, used)


def test_a_stale_entry_is_kept_loudly_or_measured_again():
  said = []
  entry = {"median_ms": 1.0}  # stored before provenance existed
  assert provenance.ensure_fresh("speed: x", entry, False, said.append)
  assert not provenance.ensure_fresh("speed: x", entry, True, said.append)
  assert [line.split(" (")[0] for line in said] == ["speed: x is STALE"] * 2
  fresh = {"provenance": provenance.record("cmd", [], ["layer"])}
  assert provenance.ensure_fresh("speed: y", fresh, True, said.append)
  assert len(said) == 2


def test_report_lines_show_commit_load_and_staleness():
  fresh = {"provenance": provenance.record("cmd", [], ["layer"]),
           "load": {"other_cpu_share_mean": 0.01, "other_cpu_share_max": 0.2}}
  lines = provenance.report_lines([("a", fresh), ("b", {})])
  commit = fresh["provenance"]["commit"][:10]
  assert lines[2].startswith("| a | %s" % commit)
  assert lines[2].endswith("| 1.0% / 20.0% | no |")
  assert lines[3] == ("| b | – | not recorded | "
                      "recorded without provenance |")
