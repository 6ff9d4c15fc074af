"""The cluster bench: bytes between tasks from the runtime vs the model."""

import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.bench.speed import cluster as cluster_bench
from switch_mtf.bench.speed import model_step
from switch_mtf.cluster import local
from switch_mtf.cluster import spec
from switch_mtf.cluster import traffic


def _devices(workers, cpus):
  return spec.Cluster("127.0.0.1:1", tuple("127.0.0.1:%d" % (2 + i)
                                           for i in range(workers)),
                      cpus).mesh_devices()


@pytest.mark.parametrize("mesh_shape, workers, cpus, fraction", [
    ("batch:4", 2, 2, 0.5),  # 2 of each slice's 4 partners elsewhere
    ("batch:4", 4, 1, 0.75),
    ("batch:4", 1, 4, 0.0),
    # (b, m) exchanges with (b', m): task-major devices put b' elsewhere.
    ("batch:2,model:2", 2, 2, 0.5),
])
def test_share_of_all_to_all_partners_in_other_processes(mesh_shape, workers,
                                                         cpus, fraction):
  assert cluster_bench.cross_process_fraction(
      mesh_shape, _devices(workers, cpus)) == fraction


def test_layouts_come_from_the_shipped_gin_files():
  assert cluster_bench.mesh_and_rules("ep") == (
      "batch:4", "ensemble:ensemble,batch:batch,experts:batch")
  assert cluster_bench.mesh_and_rules("dp_mp_ep")[0] == "batch:2,model:2"


def test_tensor_kinds():
  assert traffic.kind("encoder/block_000/layer_002/MoE1D/reshape_3/"
                      "parallel_0/Reshape") == "moe"
  assert traffic.kind("encoder/block_000/layer_002/MoE1D/wo/kernel/"
                      "adafactor/reduce_mean/Add_1") == "variables"
  assert traffic.kind("decoder/block_000/layer_000/SelfAttention/"
                      "einsum/parallel_0/einsum/Einsum") == "other"


@pytest.mark.slow  # builds a 4-slice Switch model on 2 worker processes
def test_measured_moe_traffic_is_the_all_to_all_model():
  # Experts split over 2 processes x 2 devices: half of every slice's
  # all-to-all partners are in the other process.
  bench_spec = cluster_bench.spec_for("ep")
  with local.LocalCluster(num_workers=2, devices_per_worker=2) as cluster:
    chief = tf.distribute.Server(cluster.cluster.cluster_spec(),
                                 job_name="chief", task_index=0)
    built = model_step.BuiltModel(bench_spec,
                                  devices=cluster.cluster.mesh_devices(),
                                  target=chief.target,
                                  config=tf.ConfigProto())
    try:
      moved = traffic.measure_step(built.session,
                                   [built.train_op, built.loss])
    finally:
      built.close()
  predicted = cluster_bench.predicted_moe_bytes(bench_spec)
  expected = predicted["all_to_all_bytes"] * 0.5
  # Beyond the all-to-alls the MoE scopes send only a few scalars (the
  # auxiliary loss, router metrics).
  assert expected <= moved["by_kind"]["moe"] <= expected + 1024, moved
  # Data parallelism sums the replicated weights' gradients across tasks.
  assert moved["by_kind"]["variables"] > expected
  assert set(moved["by_task_pair"]) >= {"worker:0 -> worker:1",
                                        "worker:1 -> worker:0"}


def test_no_all_to_all_is_predicted_when_the_experts_stay_whole():
  assert cluster_bench.predicted_moe_bytes(
      cluster_bench.spec_for("dp"))["all_to_all_bytes"] == 0
  split = cluster_bench.predicted_moe_bytes(cluster_bench.spec_for("ep"))
  assert split["experts_split"] and split["all_to_all_bytes"] > 0
