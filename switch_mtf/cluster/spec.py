"""The cluster a run's mesh spans: its tasks, addresses and device names.

Job names follow the Estimator's TF_CONFIG convention: one `chief` (the CLI
process, which builds the graph and runs the session) and `worker` tasks
that host mesh devices. Every task must be given the same cluster.
"""

import dataclasses
import json
import re
from typing import Dict, List, Sequence, Tuple

import tensorflow.compat.v1 as tf

CHIEF = "chief"
WORKER = "worker"
_ADDRESS = re.compile(r"^([A-Za-z0-9_.\-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$")


def parse_address(address: str, what: str) -> Tuple[str, int]:
  """"host:port" -> (host, port), or a ValueError naming `what`."""
  match = _ADDRESS.match(address.strip()) if isinstance(address, str) else None
  if not match or not 0 < int(match.group(2)) < 65536:
    raise ValueError(
        "%s = %r is not a host:port address (e.g. '127.0.0.1:2222')."
        % (what, address))
  return match.group(1), int(match.group(2))


DEVICE_TYPES = ("CPU", "GPU")


@dataclasses.dataclass(frozen=True)
class Cluster:
  """A chief and its workers; each worker has `devices_per_worker` mesh
  devices of `device_type` (CPU: logical devices the worker creates; GPU:
  the worker's visible GPUs)."""
  chief: str
  workers: Tuple[str, ...]
  devices_per_worker: int = 1
  device_type: str = "CPU"

  def __post_init__(self):
    parse_address(self.chief, "the chief's address")
    if not self.workers:
      raise ValueError("a cluster needs at least one worker address.")
    for i, worker in enumerate(self.workers):
      parse_address(worker, "worker task %d's address" % i)
    addresses = [self.chief] + list(self.workers)
    repeated = sorted({a for a in addresses if addresses.count(a) > 1})
    if repeated:
      raise ValueError("address %s is given to more than one task; every "
                       "task needs its own port." % ", ".join(repeated))
    if (not isinstance(self.devices_per_worker, int)
        or self.devices_per_worker < 1):
      raise ValueError("devices_per_worker must be a positive integer, got "
                       "%r." % (self.devices_per_worker,))
    if self.device_type not in DEVICE_TYPES:
      raise ValueError("device_type must be one of %s, got %r."
                       % (", ".join(DEVICE_TYPES), self.device_type))

  def as_dict(self) -> Dict[str, List[str]]:
    return {CHIEF: [self.chief], WORKER: list(self.workers)}

  def cluster_spec(self) -> tf.train.ClusterSpec:
    return tf.train.ClusterSpec(self.as_dict())

  def tf_config(self) -> str:
    """TF_CONFIG for the chief: the Estimator then runs its sessions on the
    chief's server (RunConfig.master) instead of in-process."""
    return json.dumps({"cluster": self.as_dict(),
                       "task": {"type": CHIEF, "index": 0}})

  def mesh_devices(self) -> List[str]:
    """Every worker device, task-major: mesh slice i on device i."""
    return [device_name(task, index, self.device_type)
            for task in range(len(self.workers))
            for index in range(self.devices_per_worker)]

  def task_address(self, task: int) -> str:
    return self.workers[task]


def device_name(task: int, index: int, device_type: str = "CPU") -> str:
  """A worker device's full name, as sessions list it."""
  return "/job:%s/replica:0/task:%d/device:%s:%d" % (WORKER, task,
                                                     device_type, index)


def task_of(device: str) -> Tuple[str, int]:
  """(job, task) of a device name; ("", 0) for a name without a job."""
  spec = tf.DeviceSpec.from_string(device)
  return spec.job or "", spec.task or 0


def from_args(chief: str, workers: Sequence[str], devices_per_worker: int = 1,
              device_type: str = "CPU") -> Cluster:
  if isinstance(workers, str):
    workers = [w for w in workers.split(",") if w.strip()]
  return Cluster(chief, tuple(w.strip() for w in workers), devices_per_worker,
                 device_type)
