"""A whole cluster on this machine: worker processes on free 127.0.0.1 ports.

For tests and for trying a cluster layout before using real hosts:

    with local.LocalCluster(num_workers=2, devices_per_worker=2) as cluster:
      gin_params = cluster.gin_params()   # bindings for switch_mtf_transformer
      ...
      cluster.kill(1); cluster.restart(1)

Every worker is started and stopped by the context; none outlives it.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional

from switch_mtf.cluster import spec as spec_lib
from switch_mtf.cluster import worker as worker_lib

HOST = "127.0.0.1"


def free_ports(count: int) -> List[int]:
  """`count` distinct ports that were free a moment ago."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket()
      s.bind((HOST, 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


class LocalCluster:
  """A chief address and `num_workers` running worker processes."""

  def __init__(self, num_workers: int, devices_per_worker: int = 1,
               start_timeout_s: float = 60.0):
    ports = free_ports(num_workers + 1)
    self.cluster = spec_lib.Cluster(
        "%s:%d" % (HOST, ports[0]),
        tuple("%s:%d" % (HOST, p) for p in ports[1:]), devices_per_worker)
    self._timeout_s = start_timeout_s
    self._processes: List[Optional[subprocess.Popen]] = [None] * num_workers
    self.logs: List[List[str]] = [[] for _ in range(num_workers)]

  def __enter__(self) -> "LocalCluster":
    try:
      for task in range(len(self._processes)):
        self.start(task)
    except BaseException:
      self.stop()
      raise
    return self

  def __exit__(self, *unused_exc) -> None:
    self.stop()

  def start(self, task: int) -> None:
    """Starts worker `task` and waits until it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "switch_mtf.cluster.worker",
         "--chief=" + self.cluster.chief,
         "--workers=" + ",".join(self.cluster.workers),
         "--task=%d" % task, "--cpus=%d" % self.cluster.devices_per_worker],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    self._processes[task] = process
    ready = threading.Event()

    def read_output():
      for line in process.stdout:
        self.logs[task].append(line)
        if line.startswith(worker_lib.READY):
          ready.set()

    threading.Thread(target=read_output, daemon=True).start()
    deadline = time.monotonic() + self._timeout_s
    while not ready.wait(0.1):
      if process.poll() is not None or time.monotonic() > deadline:
        self.kill(task)
        raise RuntimeError("worker task %d did not start:\n%s"
                           % (task, "".join(self.logs[task])))

  def kill(self, task: int) -> None:
    """Kills worker `task` at once (a crashed host)."""
    process = self._processes[task]
    if process is not None and process.poll() is None:
      process.kill()
      process.wait()

  def cpu_seconds(self, task: int) -> float:
    """CPU time worker `task` has used so far (Linux /proc): proof that
    mesh slices ran there, not on the chief."""
    with open("/proc/%d/stat" % self._processes[task].pid) as f:
      fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

  def restart(self, task: int) -> None:
    self.kill(task)
    self.start(task)

  def stop(self) -> None:
    for task in range(len(self._processes)):
      self.kill(task)

  def gin_params(self) -> List[str]:
    """`--gin_param` values that point switch_mtf.cluster_devices at it."""
    return ["switch_mtf.cluster_devices.chief = %r" % self.cluster.chief,
            "switch_mtf.cluster_devices.workers = %r"
            % list(self.cluster.workers),
            "switch_mtf.cluster_devices.devices_per_worker = %d"
            % self.cluster.devices_per_worker]
