"""Every shipped gin file parses; the model zoo, layouts and recipes build.

Big models are built as Mesh TF graphs (shapes only, no weights) through
switch_mtf.model_stats; the tiny ones also train a few steps with the t5 CLI
on a mesh of four logical CPU devices.
"""

import glob
import os
import re

import gin
import pytest
import tensorflow.compat.v1 as tf
from mesh_tensorflow.transformer import moe
from mesh_tensorflow.transformer import transformer
from mesh_tensorflow.transformer import transformer_layers

from switch_mtf.analysis import model_stats
from switch_mtf.cli import cpu_devices
from switch_mtf.cli import gin_paths
from switch_mtf.layer import switch as layer
from tests.analysis import model_stats_cache
from tests.cli import cli_runs

GIN_DIR = gin_paths.gin_dir()
SHIPPED = sorted(os.path.relpath(path, GIN_DIR) for path in
                 glob.glob(os.path.join(GIN_DIR, "**", "*.gin"),
                           recursive=True))
# Folders whose every file is built below (the others are parsed only).
BUILT_FOLDERS = ("models", "layouts", "precision", "finetune", "pretrain")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_gin_file_parses(name):
  # Composed with T5's dataset.gin, as on every CLI command line (it
  # defines the MIXTURE_NAME macro some run files use).
  model_stats.parse_gin(["dataset.gin", name], [])


# (model, moe layers, experts per layer, experts per token)
MODELS = {
    "t5_tiny": (0, 0, 0), "t5_base": (0, 0, 0), "t5_large": (0, 0, 0),
    "t5_xxl": (0, 0, 0), "t5_mini": (0, 0, 0), "switch_tiny": (2, 8, 1),
    "switch_mini": (2, 8, 1),
    "switch_base": (12, 128, 1), "switch_base_8": (12, 8, 1),
    "switch_base_16": (12, 16, 1), "switch_base_32": (12, 32, 1),
    "switch_base_64": (12, 64, 1), "switch_base_128": (12, 128, 1),
    "switch_base_256": (12, 256, 1), "switch_large": (24, 128, 1),
    "switch_xxl": (24, 128, 1), "switch_c": (30, 2048, 1),
    "moe_base": (12, 128, 2),
    # Switch FFNs plus Switch experts in the sparse blocks' self-attention.
    "switch_tiny_attention": (4, 8, 1), "switch_base_attention": (24, 128, 1),
    "switch_base_plus": (12, 128, 1),  # Table 1
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_builds_with_its_mixture_of_experts_layers(name):
  stats = model_stats_cache.model(name)
  assert (stats["moe_layers"], stats["num_experts"],
          stats["experts_per_token"]) == MODELS[name]
  assert stats["params"] > stats["expert_params"] >= 0


def _ffn_kinds(name, stack):
  """'dense'/'sparse' for each FFN of a stack, as make_layer_stack builds it."""
  model_stats.parse_gin(["models/%s.gin" % name], [])
  with gin.config_scope(stack):
    layers = transformer.make_layer_stack().layers
  kinds = []
  for each in layers:
    if isinstance(each, (layer.Switch, moe.MoE1D)):
      kinds.append("sparse")
    elif isinstance(each, transformer_layers.DenseReluDense):
      kinds.append("dense")
  return kinds


@pytest.mark.parametrize("name,ffns,every", [
    ("switch_tiny", 2, 2), ("switch_base", 12, 2), ("switch_large", 24, 2),
    ("switch_xxl", 24, 2), ("moe_base", 12, 2), ("switch_c", 15, 1)])
def test_sparse_ffns_sit_where_the_released_checkpoints_have_them(
    name, ffns, every):
  # Every other FFN, the odd ones (1, 3, 5, ...), or every FFN (Switch-C).
  expected = ["sparse" if i % every == every - 1 else "dense"
              for i in range(ffns)]
  assert _ffn_kinds(name, "encoder") == expected
  assert _ffn_kinds(name, "decoder") == expected


# A tiny Switch model whose sizes divide every mesh shipped (2048 experts,
# 16 heads): it shows how each layout splits the weights, in a second.
PROBE = ("models/switch_tiny.gin",)
PROBE_PARAMS = ("num_experts = 2048", "num_heads = 16")
TPU_LAYOUTS = [n for n in SHIPPED if re.match(r"layouts/v3-\d+_", n)]


@pytest.mark.parametrize("name", TPU_LAYOUTS)
def test_tpu_layout_splits_the_model_as_named(name):
  cores, strategy = re.match(r"layouts/v3-(\d+)_(\w+)\.gin", name).groups()
  cores = int(cores)
  one = model_stats_cache.stats(PROBE, PROBE_PARAMS)
  stats = model_stats_cache.stats(PROBE + (name,), PROBE_PARAMS)
  assert stats["num_devices"] == cores
  dims = dict(d.split(":") for d in stats["mesh_shape"].split(","))
  experts, dense = one["expert_params"], one["params"] - one["expert_params"]
  if strategy == "dp":
    assert dims == {"batch": str(cores)}
    assert stats["params_per_device"] == one["params"]
  elif strategy == "ep":
    assert dims == {"batch": str(cores)}
    assert stats["params_per_device"] == dense + experts // cores
  elif strategy == "dp_mp":
    assert int(dims["model"]) == 8
    # Experts replicated over 'batch'; their hidden units split 8 ways.
    assert experts // 8 < stats["params_per_device"] < dense + experts // 8
  else:
    assert strategy == "dp_mp_ep" and "model" in dims and "batch" in dims
    assert (experts // cores < stats["params_per_device"]
            < dense + experts // cores)


CPU_LAYOUTS = [n for n in SHIPPED if n.startswith("layouts/cpu-4_")]
# The same meshes over worker processes (tests/cluster trains cluster-4_ep).
CLUSTER_LAYOUTS = [n for n in SHIPPED if n.startswith("layouts/cluster-4_")]


@pytest.mark.parametrize("name", CPU_LAYOUTS + CLUSTER_LAYOUTS)
def test_four_device_layout_builds_after_the_tiny_run_settings(name):
  one = model_stats_cache.stats(("models/switch_tiny.gin",
                                 "runs/cpu_tiny.gin"))
  stats = model_stats_cache.stats(("models/switch_tiny.gin",
                                   "runs/cpu_tiny.gin", name))
  assert stats["num_devices"] == 4
  if name.endswith("_ep.gin") and "mp" not in name:
    assert stats["params_per_device"] == (
        one["params"] - one["expert_params"] + one["expert_params"] // 4)
  elif name.endswith("_dp.gin"):
    assert stats["params_per_device"] == one["params"]
  else:
    assert stats["params_per_device"] < one["params"] // 2


def test_logical_cpu_devices_gives_estimator_sessions_that_many_cpus(
    monkeypatch):
  # Restored after the test: other tests get the Estimator's own default.
  monkeypatch.setattr(cpu_devices.run_config, "get_default_session_config",
                      cpu_devices.run_config.get_default_session_config)
  names = cpu_devices.logical_cpu_devices(4)
  assert names == ["cpu:0", "cpu:1", "cpu:2", "cpu:3"]
  config = cpu_devices.run_config.get_default_session_config()
  with tf.Graph().as_default():
    with tf.device(names[3]):
      three = tf.constant(1.0) + 2.0
    with tf.Session(config=config) as session:
      cpus = [d.name for d in session.list_devices() if "CPU" in d.name]
      assert len(cpus) == 4
      assert session.run(three) == 3.0
  with pytest.raises(ValueError, match="num_devices"):
    cpu_devices.logical_cpu_devices(0)


@pytest.mark.parametrize("name,activations", [
    ("precision/float32.gin", tf.float32),
    ("precision/bfloat16_selective.gin", tf.bfloat16),
    ("precision/bfloat16_everywhere.gin", tf.bfloat16)])
def test_precision_builds_with_its_activation_dtype(name, activations):
  model_stats.measure(["models/switch_tiny.gin", name])
  dtype = model_stats.utils.get_variable_dtype()
  assert dtype.slice_dtype == tf.float32  # weights updated in float32
  assert dtype.activation_dtype == activations
  # Only the ablation moves the router out of float32 (paper Table 2).
  router_dtype = (tf.bfloat16 if name.endswith("bfloat16_everywhere.gin")
                  else tf.float32)
  assert layer.Switch().router_dtype == router_dtype


def test_pretrain_recipe_is_the_papers_batch_and_lengths():
  stats = model_stats.measure(["models/switch_tiny.gin",
                               "pretrain/span_corruption.gin"])
  assert stats["batch_size"] * 512 == 2**20
  assert stats["sequence_length"] == {"inputs": 512, "targets": 114}


def test_finetune_recipe_reaches_the_layers():
  model_stats.measure(["models/switch_base.gin", "finetune/constant_lr.gin"])
  with gin.config_scope("encoder"):
    layers = transformer.make_layer_stack().layers
  switch = [l for l in layers if isinstance(l, layer.Switch)]
  dense = [l for l in layers
           if isinstance(l, transformer_layers.DenseReluDense)]
  assert switch and dense
  assert {(l.expert_dropout_rate, l.capacity_factor_eval) for l in switch} \
      == {(0.4, 2.0)}
  assert {l.dropout_rate for l in dense} == {0.1}


def test_every_zoo_file_is_built_by_a_test():
  covered = {"models/%s.gin" % m for m in MODELS} | set(TPU_LAYOUTS) | set(
      CPU_LAYOUTS) | set(CLUSTER_LAYOUTS) | {"precision/float32.gin",
                      "precision/bfloat16_selective.gin",
                      "precision/bfloat16_everywhere.gin",
                      "pretrain/span_corruption.gin",
                      "finetune/constant_lr.gin"}
  zoo = {n for n in SHIPPED if n.split("/")[0] in BUILT_FOLDERS}
  assert zoo == covered


_FEW_STEPS = ("--gin_param=utils.run.train_steps = 4",
              "--gin_param=utils.run.save_checkpoints_steps = 4",
              "--gin_param=utils.run.iterations_per_loop = 4")


# Slow: a CLI training run; switch_tiny trains through the CLI in the fast
# suite (tests/cli/test_launcher.py), and this is its dense twin.
@pytest.mark.slow
def test_tiny_dense_baseline_trains_with_the_cli(tmp_path):
  model_dir = str(tmp_path / "model")
  flags = [f.replace("models/switch_tiny.gin", "models/t5_tiny.gin")
           for f in cli_runs.TINY_TRAIN_FLAGS]
  assert "--gin_file=models/t5_tiny.gin" in flags
  proc = cli_runs.run_cli(model_dir, [*flags, *_FEW_STEPS],
                          cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert cli_runs.checkpoint_steps(model_dir) == [0, 4]


@pytest.mark.slow  # Four mesh slices make a 4x graph: minutes on 2 cores.
def test_tiny_switch_trains_on_a_four_device_cpu_mesh(tmp_path):
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, [
      *cli_runs.TINY_TRAIN_FLAGS, "--gin_file=layouts/cpu-4_dp_mp_ep.gin",
      *_FEW_STEPS], cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert cli_runs.checkpoint_steps(model_dir) == [0, 4]
  graph = open(os.path.join(model_dir, "graph.pbtxt")).read()
  # Mesh slices were placed on all four devices.
  for i in range(4):
    assert 'device: "/device:CPU:%d"' % i in graph
