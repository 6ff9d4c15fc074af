"""`utils.run.mesh_devices` on a cluster: the chief's side of a run.

    utils.run.mesh_devices = @switch_mtf.cluster_devices()
    switch_mtf.cluster_devices.chief = "10.0.0.1:2220"
    switch_mtf.cluster_devices.workers = ["10.0.0.2:2221", "10.0.0.3:2221"]
    switch_mtf.cluster_devices.devices_per_worker = 2

gin evaluates the reference when `utils.run` is called, before it builds the
Estimator. Then, before any graph is built, this:
- starts the chief's tf.distribute.Server in this process and sets
  TF_CONFIG, so the Estimator's RunConfig makes that server its master and
  every session of the run executes on the cluster;
- waits (up to `connect_timeout_s`) for each worker to listen and checks
  that it has the devices the mesh needs, naming the task that is missing
  or short of devices, with the command that starts it;
- starts a watchdog that stops the run, naming the worker, as soon as a
  worker stops listening (TensorFlow would otherwise wait forever to
  recreate its session). Checkpoints already written are complete; after
  the worker is restarted the same command resumes from the newest one.
Without `workers`, the cluster is read from TF_CONFIG, as cluster managers
set it (`chief` and `worker` jobs; this process is the chief).
"""

import json
import os
import socket
import sys
import threading
import time
from typing import List, Optional, Sequence

from absl import logging
import gin
import tensorflow.compat.v1 as tf

from switch_mtf.cluster import spec as spec_lib

# Exit status of a run stopped because a worker went away.
WORKER_LOST_EXIT_CODE = 3
_started = {}  # Cluster -> its chief server, one per process


def _reachable(address: str, timeout_s: float) -> bool:
  host, port = spec_lib.parse_address(address, "address")
  try:
    with socket.create_connection((host.strip("[]"), port),
                                  timeout=timeout_s):
      return True
  except OSError:
    return False


def worker_command(cluster: spec_lib.Cluster, task: int) -> str:
  """The shell command that starts worker `task` of `cluster`."""
  return ("python -m switch_mtf.cluster.worker --chief=%s --workers=%s "
          "--task=%d --cpus=%d" % (cluster.chief, ",".join(cluster.workers),
                                   task, cluster.devices_per_worker))


def wait_for_workers(cluster: spec_lib.Cluster, timeout_s: float) -> None:
  """Returns once every worker listens; else a RuntimeError naming them."""
  deadline = time.monotonic() + timeout_s
  waiting = list(range(len(cluster.workers)))
  while waiting:
    waiting = [t for t in waiting
               if not _reachable(cluster.task_address(t), 1.0)]
    if waiting and time.monotonic() > deadline:
      raise RuntimeError(
          "worker task(s) %s not listening after %.0f s. Start each with:\n%s"
          % (", ".join("%d (%s)" % (t, cluster.task_address(t))
                       for t in waiting), timeout_s,
             "\n".join("  " + worker_command(cluster, t) for t in waiting)))
    if waiting:
      time.sleep(0.2)


def missing_devices(cluster: spec_lib.Cluster,
                    listed: Sequence[str]) -> List[str]:
  """Problems, one per worker task short of the devices the mesh needs."""
  problems = []
  wanted = cluster.device_type
  have = [tf.DeviceSpec.from_string(d) for d in listed]
  for task in range(len(cluster.workers)):
    count = sum(1 for d in have if d.job == spec_lib.WORKER
                and d.task == task and d.device_type == wanted)
    if count < cluster.devices_per_worker:
      fix = ("restart it with --cpus=%d" % cluster.devices_per_worker
             if wanted == "CPU" else
             "give it %d visible GPUs (CUDA_VISIBLE_DEVICES)"
             % cluster.devices_per_worker)
      problems.append(
          "worker task %d (%s) has %d %s device(s), the mesh needs %d: %s."
          % (task, cluster.task_address(task), count, wanted,
             cluster.devices_per_worker, fix))
  return problems


def _start_chief(cluster: spec_lib.Cluster):
  if cluster in _started:
    return _started[cluster]
  try:
    server = tf.distribute.Server(
        cluster.cluster_spec(), job_name=spec_lib.CHIEF, task_index=0,
        config=tf.ConfigProto(device_count={"CPU": 1}), start=True)
  except tf.errors.OpError as e:
    raise RuntimeError(
        "the chief could not listen at %s (%s); is the port in use? Choose "
        "another switch_mtf.cluster_devices.chief and restart the workers "
        "with it." % (cluster.chief, e.message.splitlines()[0]))
  _started[cluster] = server
  return server


def _watch(cluster: spec_lib.Cluster, interval_s: float) -> None:
  """Stops the process when a worker stops listening."""
  while True:
    time.sleep(interval_s)
    for task in range(len(cluster.workers)):
      if not _reachable(cluster.task_address(task), interval_s):
        message = (
            "worker task %d (%s) stopped listening: the run stops. "
            "Checkpoints written so far are kept; restart the worker (%s) "
            "and rerun the same command to resume from the newest one."
            % (task, cluster.task_address(task),
               worker_command(cluster, task)))
        logging.error(message)
        print("error: " + message, file=sys.stderr, flush=True)
        os._exit(WORKER_LOST_EXIT_CODE)  # pylint: disable=protected-access


def _from_tf_config(devices_per_worker: int,
                    device_type: str) -> spec_lib.Cluster:
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    raise ValueError(
        "switch_mtf.cluster_devices needs the cluster: bind "
        "switch_mtf.cluster_devices.chief and .workers, or set TF_CONFIG.")
  try:
    config = json.loads(raw)
    jobs, task = config["cluster"], config.get("task", {})
    chief, workers = jobs[spec_lib.CHIEF], jobs[spec_lib.WORKER]
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError("TF_CONFIG must name a 'chief' and 'worker' jobs "
                     "(%s): %s" % (e, raw))
  if task.get("type", spec_lib.CHIEF) != spec_lib.CHIEF:
    raise ValueError("TF_CONFIG's task is %r; switch_mtf_transformer runs as "
                     "the chief, workers run switch_mtf.cluster.worker."
                     % (task,))
  if len(chief) != 1:
    raise ValueError("TF_CONFIG lists %d chiefs; a run has one." % len(chief))
  return spec_lib.Cluster(chief[0], tuple(workers), devices_per_worker,
                          device_type)


@gin.configurable(module="switch_mtf")
def cluster_devices(chief: Optional[str] = None,
                    workers: Optional[Sequence[str]] = None,
                    devices_per_worker: int = 1,
                    device_type: str = "CPU",
                    connect_timeout_s: float = 60.0,
                    watch_interval_s: float = 2.0) -> List[str]:
  """Joins the cluster as its chief; returns the mesh devices (task-major).

  devices_per_worker is the number of mesh devices per worker, of
  `device_type`: "CPU" (the worker's --cpus logical devices) or "GPU" (its
  visible GPUs: one mesh slice per GPU).
  """
  if workers is None:
    cluster = _from_tf_config(devices_per_worker, device_type)
  else:
    if chief is None:
      raise ValueError("switch_mtf.cluster_devices.workers is bound but "
                       ".chief is not; give the chief's host:port, which "
                       "every worker was started with.")
    cluster = spec_lib.from_args(chief, workers, devices_per_worker,
                                 device_type)
  first = cluster not in _started
  server = _start_chief(cluster)
  os.environ["TF_CONFIG"] = cluster.tf_config()
  if first:
    wait_for_workers(cluster, connect_timeout_s)
    with tf.Graph().as_default():
      with tf.Session(server.target) as session:
        listed = [d.name for d in session.list_devices()]
    problems = missing_devices(cluster, listed)
    if problems:
      raise RuntimeError("\n".join(problems))
    threading.Thread(target=_watch, args=(cluster, watch_interval_s),
                     daemon=True, name="switch_mtf_worker_watchdog").start()
    logging.info("Cluster: chief %s, %d worker(s) with %d %s device(s) "
                 "each; mesh devices %s", cluster.chief, len(cluster.workers),
                 cluster.devices_per_worker, cluster.device_type,
                 cluster.mesh_devices())
  return cluster.mesh_devices()
