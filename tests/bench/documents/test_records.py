"""A run folder's record: what is copied, what is left, record.json."""

import json
import os
import subprocess

import pytest

from switch_mtf.bench.common import provenance
from switch_mtf.bench.documents import records
from switch_mtf.bench.documents import runs_text


def _run_folder(root):
  run = os.path.join(root, "demo")
  os.makedirs(os.path.join(run, "switch", "commands"))
  for name, text in (("report.md", "# r\n\n## Runs\n\n| a |\n|---|\n| 1 |\n"),
                     ("demo_timing.json", "[]"), ("loss.png", "png"),
                     ("switch/operative_config.gin", "x = 1"),
                     ("switch/commands/train.txt", "switch_mtf_transformer"),
                     ("switch/model.ckpt-600.data-00000-of-00001", "big"),
                     ("switch/events.out.tfevents.1", "big")):
    with open(os.path.join(run, name), "w") as f:
      f.write(text)
  return run


def test_import_copies_reports_configs_and_commands_not_checkpoints(
    tmp_path, monkeypatch):
  monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
  run = _run_folder(str(tmp_path))
  dest = str(tmp_path / "record")
  written = records.import_run(run, dest, "make demo", wall_seconds=61.5)
  assert sorted(written) == sorted([
      "report.md", "demo_timing.json", "loss.png",
      "switch/operative_config.gin", "switch/commands/train.txt",
      records.RECORD_FILE])
  assert not os.path.exists(os.path.join(dest, "switch",
                                         "events.out.tfevents.1"))
  with open(os.path.join(dest, records.RECORD_FILE)) as f:
    record = json.load(f)
  assert record["command"] == "make demo"
  assert record["wall_seconds"] == 61.5
  assert record["models"] == ["switch"]
  assert record["commit"] is None  # tmp_path is no git checkout
  assert record["machine"]["cores"] >= 1
  # The sections read it back.
  assert runs_text.demo_runs(runs_text.RunRecord(dest)) == [
      "| a |", "|---|", "| 1 |"]


def test_a_folder_without_a_report_is_refused(tmp_path):
  with pytest.raises(records.RecordError, match="no report.md"):
    records.import_run(str(tmp_path), str(tmp_path / "out"), "make demo")
  assert not os.path.exists(tmp_path / "out")


def test_a_new_record_replaces_an_old_one_but_not_other_folders(tmp_path):
  run = _run_folder(str(tmp_path))
  dest = tmp_path / "record"
  records.import_run(run, str(dest), "make demo")
  (dest / "stale.png").write_text("old plot")
  records.import_run(run, str(dest), "make demo")
  assert not (dest / "stale.png").exists()
  other = tmp_path / "notes"
  other.mkdir()
  (other / "keep.txt").write_text("mine")
  with pytest.raises(records.RecordError, match="holds no record.json"):
    records.import_run(run, str(other), "make demo")
  assert (other / "keep.txt").read_text() == "mine"


def test_section_stops_at_the_next_heading_of_its_level():
  lines = ["# t", "## A", "", "a1", "### sub", "s", "## B", "b"]
  assert runs_text.section(lines, "## A") == ["a1", "### sub", "s"]
  with pytest.raises(KeyError, match="no heading '## C'"):
    runs_text.section(lines, "## C")


def _git_checkout(root):
  """A git checkout at root with one commit of tracked.txt ("a")."""
  def git(*args):
    subprocess.run(["git", "-C", str(root), *args], check=True,
                   capture_output=True)
  git("init", "-q")
  (root / "tracked.txt").write_text("a")
  git("add", "tracked.txt")
  git("-c", "user.name=t", "-c", "user.email=t@t", "-c",
      "commit.gpgsign=false", "commit", "-qm", "c")


def test_the_record_names_the_checkout_the_run_folder_lives_in(tmp_path):
  _git_checkout(tmp_path)
  run = os.path.join(str(tmp_path), "output", "demo")
  os.makedirs(run)
  assert provenance.git_state(run)["dirty"] is False
  assert len(provenance.git_state(run)["commit"]) == 40
  (tmp_path / "tracked.txt").write_text("b")
  assert provenance.git_state(run)["dirty"] is True


def test_the_record_carries_provenance_and_is_shown_stale_when_code_changes(
    tmp_path, monkeypatch):
  monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
  run = _run_folder(str(tmp_path))
  with open(os.path.join(run, "switch", "commands", "train.txt"), "w") as f:
    f.write("switch_mtf_transformer --gin_file=dataset.gin "
            "--gin_file=models/switch_tiny.gin --gin_param=x=1")
  with open(os.path.join(run, "demo_timing.json"), "w") as f:
    json.dump([{"phase": "pretrain switch", "seconds": 60.0,
                "finished": "2026-12-06 10:00:00"}], f)
  dest = str(tmp_path / "record")
  records.import_run(run, dest, "make demo")
  record = runs_text.RunRecord(dest)
  stored = record.record["provenance"]
  assert stored["code_parts"] == list(records.DEMO_CODE)
  assert {"dataset.gin", "models/switch_tiny.gin",
          "models/t5_tiny.gin"} <= set(stored["gin_files"])
  assert not any("Stale" in line for line in runs_text.demo_timing(record))
  # The code that ran differs from today's: the timing section says so.
  stored["code_sha256"] = "0" * 64
  stale = runs_text.demo_timing(record)
  assert any(line.startswith("**Stale**: code of layer, tasks, cli, "
                             "training, workflows changed") for line in stale)
  # A record from before provenance is stale too.
  del record.record["provenance"]
  assert any("recorded without provenance" in line
             for line in runs_text.demo_timing(record))


def test_a_run_of_another_commit_is_refused_before_anything_is_replaced(
    tmp_path):
  _git_checkout(tmp_path)
  run = _run_folder(str(tmp_path / "output"))
  dest = tmp_path / "record"
  dest.mkdir()
  (dest / records.RECORD_FILE).write_text("{}")
  with pytest.raises(records.RecordError, match="import it with the tools "
                     "of the checkout that ran it"):
    records.import_run(run, str(dest), "make demo")
  assert (dest / records.RECORD_FILE).read_text() == "{}"
