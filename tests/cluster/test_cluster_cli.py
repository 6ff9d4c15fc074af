"""switch_mtf_transformer as the chief of a cluster of worker processes.

On 127.0.0.1 only: each test starts its workers (switch_mtf.cluster.local,
free ports chosen at run time) and stops them. Experts are split over the
workers (layouts/cluster-4_ep.gin on a 2-slice mesh, one CPU device per
worker), so every step's all-to-all crosses processes.
"""

import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from switch_mtf.cluster import devices
from switch_mtf.cluster import local
from tests.cli import cli_runs

STEPS = 6
TWO_SLICES = ("--gin_param=utils.run.mesh_shape = 'batch:2'",)
FLAGS = (*cli_runs.TINY_TRAIN_FLAGS,
         "--gin_file=runs/reliable.gin",
         "--gin_param=dropout_rate=0.1",
         "--gin_param=utils.run.train_steps=%d" % STEPS,
         "--gin_param=utils.run.save_checkpoints_steps=3",
         "--gin_param=utils.run.iterations_per_loop=3")
ONE_PROCESS = ("--gin_file=layouts/cpu-4_ep.gin", *TWO_SLICES,
               "--gin_param=switch_mtf.logical_cpu_devices.num_devices = 2")
_LOSS = re.compile(r"step, tf_loss\[([^\]]+)\]\[\d+\]\n")


def _cluster_flags(cluster, *extra):
  return ("--gin_file=layouts/cluster-4_ep.gin", *TWO_SLICES,
          *("--gin_param=" + p for p in cluster.gin_params()), *extra)


def _losses(log):
  return [float(v) for v in _LOSS.findall(log)]


def _weights(model_dir, step):
  reader = tf.train.load_checkpoint(
      os.path.join(model_dir, "model.ckpt-%d" % step))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def _assert_same_weights(model_dir, reference_dir, step):
  ours, reference = _weights(model_dir, step), _weights(reference_dir, step)
  assert sorted(ours) == sorted(reference)
  differ = [n for n in reference if not np.array_equal(ours[n], reference[n])]
  assert not differ, "step %d: %d tensors differ, e.g. %s" % (
      step, len(differ), differ[:3])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The same run on a one-process mesh of the same shape."""
  tmp = tmp_path_factory.mktemp("reference")
  model_dir = str(tmp / "model")
  proc = cli_runs.run_cli(model_dir, [*FLAGS, *ONE_PROCESS], cwd=str(tmp))
  assert proc.returncode == 0, proc.stdout[-4000:]
  return model_dir, _losses(proc.stdout)


@pytest.mark.slow  # three CLI runs of a 2-slice Switch model: minutes
def test_cluster_trains_like_one_process_and_resumes_after_a_lost_worker(
    reference, tmp_path):
  reference_dir, reference_losses = reference
  assert len(reference_losses) == STEPS
  model_dir = str(tmp_path / "model")
  with local.LocalCluster(num_workers=2) as cluster:
    idle = [cluster.cpu_seconds(t) for t in (0, 1)]
    proc = cli_runs.run_cli(model_dir, [*FLAGS, *_cluster_flags(cluster)],
                            cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-4000:]
    # The slices' work ran in the worker processes: each used 0.9-2 s of CPU
    # in this run (an idle worker uses about 0.06 s a minute).
    busy = [cluster.cpu_seconds(t) - idle[t] for t in (0, 1)]
    assert min(busy) > 0.3, busy
    assert _losses(proc.stdout) == reference_losses
    for step in (3, STEPS):
      _assert_same_weights(model_dir, reference_dir, step)

    # Kill worker 1 once the run has its step-3 checkpoint: the run stops
    # naming it; the worker restarted, the same command resumes bitwise.
    killed_dir = str(tmp_path / "killed")
    cmd = [cli_runs.LAUNCHER, "--model_dir=" + killed_dir, *FLAGS,
           *_cluster_flags(cluster)]
    run = subprocess.Popen(cmd, cwd=str(tmp_path), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    deadline = time.monotonic() + 600
    while (not os.path.exists(os.path.join(killed_dir,
                                           "model.ckpt-3.index"))
           and run.poll() is None and time.monotonic() < deadline):
      time.sleep(0.1)
    cluster.kill(1)
    out, _ = run.communicate(timeout=120)
    assert run.returncode == devices.WORKER_LOST_EXIT_CODE, out[-4000:]
    assert "worker task 1 (%s) stopped listening" % (
        cluster.cluster.task_address(1)) in out
    assert 3 in cli_runs.checkpoint_steps(killed_dir)
    cluster.restart(1)
    proc = cli_runs.run_cli(killed_dir, [*FLAGS, *_cluster_flags(cluster)],
                            cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-4000:]
    _assert_same_weights(killed_dir, reference_dir, STEPS)


def _fails_before_training(tmp_path, flags, timeout=300):
  proc = cli_runs.run_cli(str(tmp_path / "model"), [*FLAGS, *flags],
                          cwd=str(tmp_path), timeout=timeout)
  assert proc.returncode != 0
  assert not _losses(proc.stdout), "trained before failing"
  return proc.stdout


def test_missing_worker_stops_the_run_naming_it(tmp_path):
  with local.LocalCluster(num_workers=2) as cluster:
    cluster.kill(1)
    out = _fails_before_training(tmp_path, _cluster_flags(
        cluster, "--gin_param=switch_mtf.cluster_devices.connect_timeout_s"
        " = 2"))
  assert "worker task(s) 1 (%s) not listening after 2 s" % (
      cluster.cluster.task_address(1)) in out
  assert "--task=1" in out


@pytest.mark.slow  # a cluster of processes per error path
def test_worker_with_too_few_devices_is_named(tmp_path):
  with local.LocalCluster(num_workers=2) as cluster:
    out = _fails_before_training(tmp_path, _cluster_flags(
        cluster, "--gin_param=switch_mtf.cluster_devices.devices_per_worker"
        " = 2", "--gin_param=utils.run.mesh_shape = 'batch:4'"))
  assert "worker task 0 (%s) has 1 CPU device(s), the mesh needs 2" % (
      cluster.cluster.task_address(0)) in out


# Slow: a third local cluster; the fast tests keep two refusals that start
# one.
@pytest.mark.slow
def test_device_list_that_does_not_match_the_mesh_is_refused(tmp_path):
  with local.LocalCluster(num_workers=2) as cluster:
    out = _fails_before_training(tmp_path, _cluster_flags(
        cluster, "--gin_param=utils.run.mesh_shape = 'batch:4'"))
  assert "utils.run.mesh_devices names 2 device(s)" in out


@pytest.mark.slow  # a cluster of processes per error path
def test_chief_port_in_use_is_named(tmp_path):
  with local.LocalCluster(num_workers=2) as cluster:
    host, port = cluster.cluster.chief.split(":")
    with socket.socket() as busy:
      busy.bind((host, int(port)))
      busy.listen()
      out = _fails_before_training(tmp_path, _cluster_flags(cluster))
  assert "the chief could not listen at %s" % cluster.cluster.chief in out


def test_worker_port_in_use_is_named():
  chief_port, port = local.free_ports(2)
  with socket.socket() as busy:
    busy.bind((local.HOST, port))
    busy.listen()
    proc = subprocess.run(
        [sys.executable, "-m", "switch_mtf.cluster.worker",
         "--chief=%s:%d" % (local.HOST, chief_port),
         "--workers=%s:%d" % (local.HOST, port), "--task=0"],
        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2
  assert "worker task 0 could not listen at %s:%d" % (local.HOST, port) in (
      proc.stderr)
