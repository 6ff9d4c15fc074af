"""Sparse upcycling: experts are the dense FFN, routers Mesh TF's 0.1x draw.

The upcycled dir must hold exactly the variables Mesh TF builds from its
emitted gin, every expert a copy of the dense FFN it replaces and every
other weight the dense model's (at its new block/layer name). Functionally:
with the routers zeroed (each token's top-1 probability is 1/E, and every
expert is the same FFN) the upcycled model must compute what the dense
model computes with those FFNs' output kernels scaled by 1/E, checked
through Mesh TF on CPU.
"""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_model
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import upcycle
from switch_mtf.checkpoints.errors import ConversionError
from tests.checkpoints import hf_fixtures
from tests.checkpoints import mtf_forward
from tests.checkpoints import mtf_fixtures
from tests.checkpoints import tool_help

DENSE = architecture.Architecture(
    vocab_size=hf_fixtures.VOCAB_SIZE, d_model=16, d_ff=32, num_heads=2,
    d_kv=8, encoder=architecture.Stack(4), decoder=architecture.Stack(2),
    activation="relu", tied_embeddings=True)
EXPERTS = 4


def _values(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def _upcycled(tmp_path, placement=upcycle.EVERY_OTHER, arch=DENSE):
  mtf_fixtures.write_model_dir(str(tmp_path / "dense"), arch)
  return upcycle.upcycle(str(tmp_path / "dense"), str(tmp_path / "switch"),
                         EXPERTS, placement=placement, seed=3)


@pytest.mark.parametrize("placement", [upcycle.EVERY_OTHER, upcycle.ALL])
def test_experts_are_the_dense_ffn_and_the_rest_is_copied(tmp_path,
                                                          placement):
  result = _upcycled(tmp_path, placement)
  dense = _values(str(tmp_path / "dense" / "model.ckpt-7"))
  switch = _values(result.checkpoint_prefix)
  mtf_model.parse([result.gin_file])
  built = mtf_model.variables(hf_fixtures.VOCAB_SIZE)
  assert {n: (v.shape, "float32") for n, v in switch.items()
          if n != "global_step"} == built
  assert switch["global_step"] == 7  # the schedule continues
  sparse = upcycle.sparse_architecture(DENSE, EXPERTS, placement)
  dense_params = {(p.stack, p.layer, p.part): p.mtf_name
                  for p in mtf_names.params(DENSE)}
  routers = []
  for param in mtf_names.params(sparse):
    if param.sublayer != mtf_names.MOE or param.weight == mtf_names.NORM:
      part = param.part.replace(mtf_names.MOE + ".", mtf_names.FFN + ".")
      np.testing.assert_array_equal(
          switch[param.mtf_name],
          dense[dense_params[(param.stack, param.layer, part)]])
    elif param.weight == mtf_names.ROUTER:
      routers.append(switch[param.mtf_name])
    else:
      ffn = dense[dense_params[(param.stack, param.layer,
                                mtf_names.FFN + "." + param.weight)]]
      for expert in switch[param.mtf_name]:
        np.testing.assert_array_equal(expert, ffn)
  # Encoder 4 layers, decoder 2: layers 1, 3 and 1, or all six.
  assert len(routers) == {upcycle.EVERY_OTHER: 3, upcycle.ALL: 6}[placement]
  assert not np.array_equal(routers[0], routers[1])  # one draw each


def test_router_init_is_the_0_1x_truncated_normal():
  kernel = upcycle.router_init(256, 64, seed=0)
  stddev = (0.1 / 256) ** 0.5  # scale / fan_in
  # A normal truncated at 2 stddev has 0.8796 of the stddev.
  assert abs(kernel.std() / (0.87962566 * stddev) - 1) < 0.03
  assert np.abs(kernel).max() <= 2 * stddev
  assert abs(kernel.mean()) < 0.05 * stddev
  np.testing.assert_array_equal(kernel, upcycle.router_init(256, 64, seed=0))


def test_uniform_routers_compute_the_dense_function_over_e(tmp_path):
  result = _upcycled(tmp_path)
  switch = _values(result.checkpoint_prefix)
  sparse = upcycle.sparse_architecture(DENSE, EXPERTS, upcycle.EVERY_OTHER)
  zeroed = {p.mtf_name: np.zeros_like(switch[p.mtf_name])
            for p in mtf_names.params(sparse)
            if p.weight == mtf_names.ROUTER}
  scaled_dense = _values(str(tmp_path / "dense" / "model.ckpt-7"))
  for param in mtf_names.params(DENSE):
    if (param.part == "ffn.wo"
        and sparse.stack(param.stack).is_sparse(param.layer)):
      scaled_dense[param.mtf_name] = scaled_dense[param.mtf_name] / EXPERTS
  for name, values in (("switch_zeroed", dict(switch, **zeroed)),
                       ("dense_scaled", scaled_dense)):
    os.makedirs(tmp_path / name)
    mtf_checkpoint.write(str(tmp_path / name), 7, (
        (n, v) for n, v in values.items() if n != "global_step"))
  rng = np.random.RandomState(0)
  inputs = rng.randint(2, hf_fixtures.VOCAB_SIZE, (2, 20))
  targets = rng.randint(2, hf_fixtures.VOCAB_SIZE, (2, 12))
  no_drops = ["Switch.capacity_factor_eval = %.1f" % EXPERTS]
  upcycled = mtf_forward.run(str(tmp_path / "switch_zeroed" / "model.ckpt-7"),
                             [result.gin_file], inputs, targets, no_drops)
  dense = mtf_forward.run(
      str(tmp_path / "dense_scaled" / "model.ckpt-7"),
      [str(tmp_path / "dense" / "model.gin")], inputs, targets)
  np.testing.assert_allclose(upcycled.logits, dense.logits, atol=1e-5,
                             rtol=0)
  assert np.abs(dense.logits).max() > 1e-2


def test_reads_the_cli_record_of_a_run_with_our_tasks(tmp_path):
  # A CLI run with --module_import=switch_mtf.tasks leaves an
  # operative_config.gin that binds task_vocabulary with no import line. A
  # fresh process (nothing else has imported our tasks) must still read it.
  dense = tmp_path / "dense"
  mtf_fixtures.write_model_dir(str(dense), DENSE)
  model_gin = dense / "model.gin"
  record = "".join(line for line in model_gin.read_text().splitlines(True)
                   if not line.startswith("import switch_mtf"))
  (dense / "operative_config.gin").write_text(
      record + "task_vocabulary.name = None\n")
  model_gin.unlink()
  script = ("import sys\n"
            "from switch_mtf.checkpoints import upcycle\n"
            "upcycle.upcycle(sys.argv[1], sys.argv[2], 2)\n")
  subprocess.run([sys.executable, "-c", script, str(dense),
                  str(tmp_path / "switch")], check=True)
  assert (tmp_path / "switch" / "checkpoint").is_file()


def test_refusals(tmp_path):
  with pytest.raises(ConversionError, match="already sparse"):
    upcycle.sparse_architecture(
        dataclasses.replace(DENSE, encoder=architecture.Stack(4, (1,)),
                            num_experts=2, routing=upcycle.ROUTING), 4,
        upcycle.EVERY_OTHER)
  with pytest.raises(ConversionError, match="no FFN to upcycle"):
    upcycle.sparse_architecture(
        dataclasses.replace(DENSE, encoder=architecture.Stack(1),
                            decoder=architecture.Stack(1)), 4,
        upcycle.EVERY_OTHER)
  with pytest.raises(ConversionError, match=">= 2 experts"):
    upcycle.sparse_architecture(DENSE, 1, upcycle.ALL)
  mtf_fixtures.write_model_dir(str(tmp_path / "dense"), DENSE)
  with pytest.raises(ConversionError, match="needs \\[16, 48\\]"):
    upcycle.upcycle(str(tmp_path / "dense"), str(tmp_path / "out"), 4,
                    gin_params=["d_ff = 48"])
  assert not (tmp_path / "out").exists()


def test_tool_documents_every_flag_and_runs(tmp_path, capsys):
  tool = tool_help.load_tool("upcycle")
  assert tool_help.undocumented(tool.build_parser()) == []
  mtf_fixtures.write_model_dir(str(tmp_path / "dense"), DENSE)
  assert tool.main([str(tmp_path / "dense"), str(tmp_path / "switch"),
                    "--num_experts=2", "--sparse_layers=all"]) == 0
  assert "--gin_file=" in capsys.readouterr().out
  assert tool.main([str(tmp_path / "dense"), str(tmp_path / "switch"),
                    "--num_experts=2"]) == 2
  assert "--overwrite" in capsys.readouterr().err
