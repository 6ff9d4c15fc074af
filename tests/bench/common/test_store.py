"""The resumable result store: persistence, skips, commands.

No timings: bookkeeping checked against hand-computed values.
"""

import json

import pytest

from switch_mtf.bench.common import store as store_lib


def test_store_persists_skips_done_and_keeps_commands(tmp_path):
  path = str(tmp_path / "r" / "layers.json")
  first = store_lib.ResultStore(path, command="python tools/bench.py")
  first.put("a", {"ms": 1.5})
  assert first.pending(["a", "b"]) == ["b"]
  # A resumed run: same file, new command; finished entries survive.
  second = store_lib.ResultStore(path, command="python tools/bench.py -q")
  assert second.done("a") and second.get("a") == {"ms": 1.5}
  assert second.pending(["a", "b"]) == ["b"]
  second.put("b", {"ms": 2.0})
  on_disk = json.load(open(path))
  assert [c["command"] for c in on_disk["commands"]] == [
      "python tools/bench.py", "python tools/bench.py -q"]
  assert sorted(on_disk["entries"]) == ["a", "b"]


def test_an_entry_reads_the_same_before_and_after_a_reload(tmp_path):
  path = str(tmp_path / "runs.json")
  store = store_lib.ResultStore(path)
  store.put("run", {"gin_params": ("a = 1", "b = 2"), "curve": [(1, 2.0)]})
  assert store.get("run") == store_lib.ResultStore(path).get("run") == {
      "gin_params": ["a = 1", "b = 2"], "curve": [[1, 2.0]]}


def test_store_refuses_a_foreign_json(tmp_path):
  path = tmp_path / "other.json"
  path.write_text('{"x": 1}')
  with pytest.raises(ValueError, match="not a result file"):
    store_lib.ResultStore(str(path))
