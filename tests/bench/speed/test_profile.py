"""The per-op profile refuses a busy machine and stores its load, as the
timed blocks do (no timing is asserted)."""

import json
import os

import pytest

from switch_mtf.bench import suite
from switch_mtf.bench.speed import layer_graph
from switch_mtf.bench.speed import profile
from switch_mtf.bench.speed import timing

TINY = dict(batch=2, length=16, d_model=8, hidden=16, num_experts=4,
            group_size=16)


class _ScriptedMonitor:
  """A LoadMonitor whose every use reports the next scripted share."""

  def __init__(self, shares):
    self.shares = list(shares)

  def __call__(self, *unused_args, **unused_kwargs):
    return self

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.share = self.shares.pop(0)

  def summary(self):
    return {"other_cpu_share_mean": self.share,
            "other_cpu_share_max": self.share, "samples": 1}


def test_a_profile_disturbed_by_other_processes_is_taken_again(monkeypatch):
  monkeypatch.setattr(profile.provenance, "LoadMonitor",
                      _ScriptedMonitor([0.4, 0.01]))
  taken = []
  monkeypatch.setattr(profile, "profile_step", lambda built, runs, top: (
      taken.append(built) or {"op_time_ms_per_step": 1.0}))
  said = []
  result = profile.profile_on_idle_machine("layer", said.append, wait_s=0.0)
  assert taken == ["layer", "layer"]
  assert result["load"]["other_cpu_share_mean"] == 0.01
  assert result["load"]["attempts"] == 2
  assert len(said) == 1 and "machine busy" in said[0]
  # Busy at every attempt: stops, saying why.
  monkeypatch.setattr(profile.provenance, "LoadMonitor",
                      _ScriptedMonitor([0.4] * 2))
  with pytest.raises(timing.BusyMachine, match="in each of 2 profiles"):
    profile.profile_on_idle_machine("layer", said.append, retries=1,
                                    wait_s=0.0)


def test_a_tiny_layer_is_profiled_with_its_load():
  built = layer_graph.BuiltLayer(
      layer_graph.LayerSpec(kind=layer_graph.SWITCH_GATHER, **TINY),
      threads=1)
  try:
    result = profile.profile_on_idle_machine(built, runs=2,
                                             max_other_share=1.0)
  finally:
    built.close()
  assert result["op_time_ms_per_step"] > 0 and result["by_op_type"]
  assert result["load"]["attempts"] == 1 and result["load"]["samples"] >= 1


def test_the_profile_part_stores_the_load_and_reports_it(tmp_path,
                                                         monkeypatch):
  # Wiring only: the suite's profile part goes through the guard.
  class _Layer:
    def __init__(self, spec, threads):
      self.spec = spec

    def close(self):
      pass

  def guarded(built, log):
    log("guarded %s" % built.spec.kind)
    return {"op_time_ms_per_step": 2.0, "by_op_type": [["Einsum", 1.5]],
            "by_scope": [], "by_op": [["a (Einsum)", 1.5]], "runs": 5,
            "load": {"other_cpu_share_mean": 0.012,
                     "other_cpu_share_max": 0.03, "samples": 4,
                     "attempts": 1}}
  monkeypatch.setattr(suite.layer_graph, "BuiltLayer", _Layer)
  monkeypatch.setattr(suite.profile_lib, "profile_on_idle_machine", guarded)
  monkeypatch.setattr(suite, "PROFILES", ((layer_graph.DENSE, 8),))
  said = []
  results = tmp_path / "results"
  suite.run(suite.Options(results_dir=str(results), parts=["profile"],
                          command="bench"), log=said.append)
  assert "guarded dense" in said
  with open(results / "speed" / "profile.json") as f:
    [entry] = json.load(f)["entries"].values()
  assert entry["load"]["other_cpu_share_mean"] == 0.012
  with open(os.path.join(results, "speed", "summary.md")) as f:
    summary = f.read()
  assert ("Other processes' CPU share meanwhile: 1.2% mean, 3.0% max" in
          summary)
