"""T5X checkpoints (T5X's own layout) convert to model dirs Mesh TF loads.

Tiny checkpoints of each family (Switch-Base-like, all-sparse Switch-C-like,
GEGLU Switch-XXL-like with split-head attention kernels in bfloat16, dense
T5.1.1-like) written by t5x_fixtures (flaxformer names, TensorStore +
msgpack) must convert to exactly the variables Mesh TF builds from the
emitted gin, with the T5X arrays as values. Full-size released layouts
(metadata only, no data) must yield gins with the released routing.
"""

import ml_dtypes
import numpy as np
import pytest

from switch_mtf.checkpoints import import_t5x
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_model
from switch_mtf.checkpoints import t5x_checkpoint
from switch_mtf.checkpoints.errors import ConversionError
from tests.checkpoints import hf_fixtures
from tests.checkpoints import t5x_fixtures

Shape = t5x_fixtures.Shape
FAMILIES = {
    "switch_base_like": (Shape(16, 32, 2, 8, 4, 4, num_experts=4), "float32"),
    "switch_c_like": (Shape(16, 32, 2, 8, 2, 3, num_experts=8,
                            every_ffn_sparse=True, tied=False), "float32"),
    "switch_xxl_like": (Shape(16, 32, 2, 8, 2, 2, num_experts=2, gated=True,
                              tied=False, split_heads=True), "bfloat16"),
    "t5_v1_1_like": (Shape(16, 32, 2, 8, 2, 2, gated=True, tied=False),
                     "float32"),
}


def _convert(tmp_path, family, version=3):
  shape, dtype = FAMILIES[family]
  numpy_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float32
  values = t5x_fixtures.random_values(shape, numpy_dtype)
  t5x_dir = t5x_fixtures.write(str(tmp_path / "t5x"), 1234, values,
                               version=version)
  result = import_t5x.import_t5x(t5x_dir, str(tmp_path / "mtf"),
                                 hf_fixtures.SPIECE, dtype=dtype)
  return values, result


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_converts_to_exactly_the_graphs_variables(tmp_path, family):
  _, result = _convert(tmp_path, family)
  checkpoint = mtf_checkpoint.MtfCheckpoint(result.checkpoint_prefix)
  mtf_model.parse([result.gin_file])
  built = mtf_model.variables(t5x_fixtures.VOCAB)
  assert {n: (checkpoint.shape(n), checkpoint.dtype(n))
          for n in checkpoint.names()} == built
  assert checkpoint.step == 1234


def test_switch_values_are_the_t5x_arrays(tmp_path):
  values, result = _convert(tmp_path, "switch_c_like")
  mtf = mtf_checkpoint.MtfCheckpoint(result.checkpoint_prefix).read
  np.testing.assert_array_equal(mtf("shared/embedding"),
                                values["token_embedder/embedding"])
  np.testing.assert_array_equal(mtf("decoder/logits/kernel"),
                                values["decoder/logits_dense/kernel"])
  # Every FFN sparse: one transformer layer per Mesh TF block.
  np.testing.assert_array_equal(
      mtf("decoder/block_002/layer_002/MoE1D/wi/kernel"),
      values["decoder/layers_2/mlp/expert/wi/kernel"])
  np.testing.assert_array_equal(
      mtf("encoder/block_001/layer_001/MoE1D/switch_gating/kernel"),
      values["encoder/layers_1/mlp/router/router_weights/w/kernel"])
  np.testing.assert_array_equal(
      mtf("decoder/block_001/layer_001/EncDecAttention/o"),
      values["decoder/layers_1/encoder_decoder_attention/out/kernel"])
  np.testing.assert_array_equal(
      mtf("decoder/block_000/layer_001/rms_norm/scale"),
      values["decoder/layers_0/pre_cross_attention_layer_norm/scale"])
  np.testing.assert_array_equal(
      mtf("decoder/block_000/layer_000/SelfAttention/relative_attention_bias"),
      values["decoder/relpos_bias/rel_embedding"])


def test_split_head_kernels_and_version_2_bfloat16(tmp_path):
  values, result = _convert(tmp_path, "switch_xxl_like", version=2)
  checkpoint = mtf_checkpoint.MtfCheckpoint(result.checkpoint_prefix)
  assert checkpoint.dtype("encoder/block_000/layer_000/SelfAttention/q") == (
      "bfloat16")
  np.testing.assert_array_equal(
      checkpoint.read("encoder/block_000/layer_000/SelfAttention/q"),
      values["encoder/layers_0/attention/query/kernel"].reshape(16, 16))
  np.testing.assert_array_equal(
      checkpoint.read("decoder/block_000/layer_003/SelfAttention/o"),
      values["decoder/layers_1/self_attention/out/kernel"].reshape(16, 16))
  np.testing.assert_array_equal(
      checkpoint.read("encoder/block_000/layer_003/MoE1D/wi_1/kernel"),
      values["encoder/layers_1/mlp/expert/wi_1/kernel"])
  gin_text = open(result.gin_file).read()
  assert 'Switch.activation = "geglu"' in gin_text
  assert 'Switch.router_policy_train = "argmax"' in gin_text  # no jitter


# (release, shape): the switch_classic sizes (flaxformer's
# switch_classic_*.gin) with one expert count each.
RELEASES = {
    "base_e8": Shape(768, 3072, 12, 64, 12, 12, num_experts=8,
                     vocab=32128),
    "large_e128": Shape(1024, 4096, 16, 64, 24, 24, num_experts=128,
                        vocab=32128),
    "xxl_e128": Shape(4096, 10240, 64, 64, 24, 24, num_experts=128,
                      gated=True, tied=False, vocab=32128),
    "c_e2048": Shape(2080, 6144, 30, 64, 15, 15, num_experts=2048,
                     every_ffn_sparse=True, tied=False, vocab=32128),
}
EXPECTED = {  # group, train CF, eval CF, min capacity, tied, activation
    "base_e8": (8192, 1.25, 2.0, 4, True, "relu"),
    "large_e128": (4096, 1.25, 2.0, 4, True, "relu"),
    "xxl_e128": (4096, 1.25, 4.0, 2, False, "geglu"),
    "c_e2048": (2048, 1.0, 2.0, 2, False, "relu"),
}


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_released_layouts_get_the_released_routing(tmp_path, release):
  shapes = t5x_fixtures.parameter_shapes(RELEASES[release])
  t5x_dir = t5x_fixtures.write(str(tmp_path), 500100, shapes=shapes,
                               data=False)
  plan = import_t5x.plan(t5x_dir)
  group, train, evaluation, min_capacity, tied, activation = EXPECTED[
      release]
  routing = plan.arch.routing
  assert (routing.group_size, routing.capacity_factor_train,
          routing.capacity_factor_eval, routing.min_expert_capacity) == (
              group, train, evaluation, min_capacity)
  assert routing.jitter_eps == 0.0  # T5X releases have no router jitter
  assert (plan.arch.tied_embeddings, plan.arch.activation) == (tied,
                                                               activation)
  assert plan.arch.num_experts == RELEASES[release].num_experts
  assert "switch_classic" in plan.routing_source
  assert plan.checkpoint.step == 500100


def test_bad_t5x_input(tmp_path):
  shape = FAMILIES["switch_base_like"][0]
  values = t5x_fixtures.random_values(shape)
  del values["decoder/layers_3/mlp/expert/wo/kernel"]
  t5x_dir = t5x_fixtures.write(str(tmp_path / "t5x"), 5, values)
  with pytest.raises(ConversionError) as error:
    import_t5x.import_t5x(t5x_dir, str(tmp_path / "mtf"), hf_fixtures.SPIECE)
  assert "decoder/layers_3/mlp/expert/wo/kernel" in str(error.value)
  assert not (tmp_path / "mtf").exists()
  (tmp_path / "tf").mkdir()
  (tmp_path / "tf" / "checkpoint").write_text(
      'model_checkpoint_path: "model.ckpt-0"\n')
  with pytest.raises(ConversionError, match="TensorFlow checkpoint state"):
    t5x_checkpoint.T5XCheckpoint(str(tmp_path / "tf"))
  with pytest.raises(ConversionError, match="gsutil"):
    t5x_checkpoint.T5XCheckpoint("gs://t5-data/x/checkpoint_1")
