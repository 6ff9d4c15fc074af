"""Round-robin timing refuses a busy machine (no timing is asserted)."""

import subprocess
import sys
import time

import pytest

from switch_mtf.bench.speed import timing

_PROTOCOL = timing.Protocol(warmup=1, rounds=3, iterations=2, forward_runs=1)


def _contenders():
  calls = {"a": 0, "b": 0}

  def make(name):
    def fn():
      calls[name] += 1
      time.sleep(0.01)
    return fn
  return {name: make(name) for name in calls}, calls


def test_round_robin_runs_every_contender_the_same_number_of_times():
  contenders, calls = _contenders()
  times = timing.time_round_robin(contenders, _PROTOCOL)
  assert calls == {"a": 7, "b": 7}  # 1 warm-up + 3 rounds x 2
  assert {t["runs"] for t in times.values()} == {6}
  assert all(t["min_ms"] <= t["median_ms"] for t in times.values())


def test_a_measurement_disturbed_by_another_process_is_refused():
  busy = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"
  # Detached (the shell exits at once): another process, not our child.
  subprocess.run(["sh", "-c", "%s -c \"$0\" >/dev/null 2>&1 &"
                  % sys.executable, busy], check=True)
  said = []
  try:
    with pytest.raises(timing.BusyMachine, match="in each of 2 attempts"):
      timing.time_on_idle_machine(_contenders()[0], _PROTOCOL, said.append,
                                  max_other_share=0.05, retries=1,
                                  wait_s=0.0)
  finally:
    subprocess.run(["pkill", "-f", "end = time.time() \\+ 30"], check=False)
  assert len(said) == 2 and "machine busy" in said[0]


def test_a_generous_limit_returns_times_and_the_load():
  times, load = timing.time_on_idle_machine(_contenders()[0], _PROTOCOL,
                                            max_other_share=1.0)
  assert set(times) == {"a", "b"}
  assert load["attempts"] == 1 and load["samples"] >= 1


def test_bandwidth_probe_runs_and_counts_its_bytes():
  probe = timing.BandwidthProbe(n=1 << 20, threads=1)
  try:
    probe()
  finally:
    probe.close()
  assert probe.bytes == 4 * 4 * (1 << 20) and probe.name == "stream_add_1M"


def test_matmul_probe_runs_and_counts_its_flops():
  probe = timing.MatmulProbe(64, 32, 16, threads=1)
  try:
    probe()
  finally:
    probe.close()
  assert probe.flops == 2 * 64 * 32 * 16 and probe.name == "matmul_64x32x16"
