"""The cluster description: addresses, device names, TF_CONFIG, checks."""

import json

import pytest

from switch_mtf.cluster import devices
from switch_mtf.cluster import spec
from switch_mtf.cluster import worker
from switch_mtf.training import preflight

import mesh_tensorflow as mtf

CLUSTER = spec.Cluster("127.0.0.1:2220", ("127.0.0.1:2221", "127.0.0.1:2222"),
                       devices_per_worker=2)


def test_mesh_devices_are_task_major_worker_cpus():
  assert CLUSTER.mesh_devices() == [
      "/job:worker/replica:0/task:0/device:CPU:0",
      "/job:worker/replica:0/task:0/device:CPU:1",
      "/job:worker/replica:0/task:1/device:CPU:0",
      "/job:worker/replica:0/task:1/device:CPU:1"]
  assert [spec.task_of(d) for d in CLUSTER.mesh_devices()] == [
      ("worker", 0), ("worker", 0), ("worker", 1), ("worker", 1)]


def test_tf_config_makes_this_process_the_chief():
  config = json.loads(CLUSTER.tf_config())
  assert config == {"cluster": {"chief": ["127.0.0.1:2220"],
                                "worker": ["127.0.0.1:2221",
                                           "127.0.0.1:2222"]},
                    "task": {"type": "chief", "index": 0}}


@pytest.mark.parametrize("chief, workers, cpus, message", [
    ("127.0.0.1", ("127.0.0.1:2221",), 1, "not a host:port"),
    ("127.0.0.1:2220", ("127.0.0.1:70000",), 1, "worker task 0's address"),
    ("127.0.0.1:2220", (), 1, "at least one worker"),
    ("127.0.0.1:2220", ("127.0.0.1:2220",), 1, "more than one task"),
    ("127.0.0.1:2220", ("127.0.0.1:2221",), 0, "positive integer"),
])
def test_bad_clusters_are_refused_naming_the_problem(chief, workers, cpus,
                                                     message):
  with pytest.raises(ValueError, match=message):
    spec.Cluster(chief, workers, cpus)


def test_a_worker_short_of_devices_is_named_with_the_fix():
  listed = ["/job:chief/replica:0/task:0/device:CPU:0",
            "/job:worker/replica:0/task:0/device:CPU:0",
            "/job:worker/replica:0/task:0/device:CPU:1",
            "/job:worker/replica:0/task:1/device:CPU:0"]
  assert devices.missing_devices(CLUSTER, listed) == [
      "worker task 1 (127.0.0.1:2222) has 1 CPU device(s), the mesh needs "
      "2: restart it with --cpus=2."]
  assert devices.missing_devices(CLUSTER, listed + [
      "/job:worker/replica:0/task:1/device:CPU:1"]) == []


def test_unreachable_workers_are_named_with_their_start_command():
  with pytest.raises(RuntimeError) as error:
    devices.wait_for_workers(CLUSTER, timeout_s=0.5)
  text = str(error.value)
  assert "worker task(s) 0 (127.0.0.1:2221), 1 (127.0.0.1:2222)" in text
  assert ("python -m switch_mtf.cluster.worker --chief=127.0.0.1:2220 "
          "--workers=127.0.0.1:2221,127.0.0.1:2222 --task=1 --cpus=2") in text


def test_worker_refuses_a_task_outside_the_cluster(capsys):
  assert worker.main(["--chief=127.0.0.1:2220",
                      "--workers=127.0.0.1:2221", "--task=1"]) == 2
  assert "--task=1, but --workers lists 1 task(s)" in capsys.readouterr().err


def test_preflight_leaves_other_tasks_devices_to_the_cluster_check(
    monkeypatch):
  monkeypatch.setenv("TF_CONFIG", CLUSTER.tf_config())
  mesh = mtf.convert_to_shape("batch:4")
  # The chief has one CPU; the workers' devices are not its own.
  assert preflight.mesh_problems(mesh, CLUSTER.mesh_devices(), 1) == []
  assert preflight.mesh_problems(mesh, CLUSTER.mesh_devices()[:2], 1) == [
      "utils.run.mesh_devices names 2 device(s) but utils.run.mesh_shape "
      "'batch:4' has 4 slices; give exactly one device per slice (e.g. "
      "switch_mtf.logical_cpu_devices.num_devices = 4) or change the mesh "
      "shape."]
  # A local name beyond the local CPUs is still caught.
  assert preflight.mesh_problems(
      mesh, ["/job:localhost/replica:0/task:0/device:CPU:%d" % i
             for i in range(4)], 1)


def test_gpu_clusters_name_and_check_gpu_devices():
  gpus = spec.Cluster("127.0.0.1:2220", ("127.0.0.1:2221",),
                      devices_per_worker=2, device_type="GPU")
  assert gpus.mesh_devices() == ["/job:worker/replica:0/task:0/device:GPU:0",
                                 "/job:worker/replica:0/task:0/device:GPU:1"]
  listed = ["/job:worker/replica:0/task:0/device:CPU:0",
            "/job:worker/replica:0/task:0/device:GPU:0"]
  assert devices.missing_devices(gpus, listed) == [
      "worker task 0 (127.0.0.1:2221) has 1 GPU device(s), the mesh needs 2: "
      "give it 2 visible GPUs (CUDA_VISIBLE_DEVICES)."]
  with pytest.raises(ValueError, match="device_type must be one of"):
    spec.Cluster("127.0.0.1:2220", ("127.0.0.1:2221",), device_type="TPU")


def test_preflight_refuses_devices_of_tasks_the_cluster_lacks(monkeypatch):
  mesh = mtf.convert_to_shape("batch:2")
  three_tasks = [spec.device_name(t, 0) for t in (0, 2)]
  monkeypatch.setenv("TF_CONFIG", CLUSTER.tf_config())
  assert preflight.mesh_problems(mesh, three_tasks, 1) == [
      "mesh device '/job:worker/replica:0/task:2/device:CPU:0' names task 2 "
      "of job 'worker', which the cluster does not have (TF_CONFIG has 1 "
      "chief task(s), 2 worker task(s)); bind utils.run.mesh_devices = "
      "@switch_mtf.cluster_devices() (gin/layouts/cluster-4_*.gin), which "
      "lists the cluster's own devices."]
  monkeypatch.delenv("TF_CONFIG")
  problems = preflight.mesh_problems(mesh, three_tasks[:1] * 2, 1)
  assert len(problems) == 2 and "TF_CONFIG is not set" in problems[0]
