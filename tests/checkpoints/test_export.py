"""Mesh TF -> Hugging Face: round trips are bit-identical; refusals say why.

HF -> Mesh TF -> HF starts from transformers' own save_pretrained files and
compares every tensor with safetensors' torch loader; Mesh TF -> HF -> Mesh
TF starts from a random model dir and compares every checkpoint tensor with
TensorFlow's reader, and the emitted gin line by line (the routing travels
in config.json's mesh_tf_routing). transformers' from_pretrained must load
the export with nothing missing but the tied copies it rebuilds itself.
"""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import export_hf
from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import import_hf
from switch_mtf.checkpoints.errors import ConversionError
from tests.checkpoints import hf_fixtures
from tests.checkpoints import mtf_fixtures
from tests.checkpoints import test_mapping

_TINY = dict(vocab_size=hf_fixtures.VOCAB_SIZE, d_model=16, d_ff=32,
             num_heads=2, d_kv=8)
SWITCH = architecture.Architecture(
    encoder=architecture.Stack(4, (1, 3)), decoder=architecture.Stack(2, (1,)),
    activation="gelu", tied_embeddings=False, num_experts=4,
    routing=test_mapping.ROUTING, dropout_rate=0.05, **_TINY)
DENSE = architecture.Architecture(
    encoder=architecture.Stack(2), decoder=architecture.Stack(3),
    activation="geglu", tied_embeddings=False, relative_buckets=16, **_TINY)


def _checkpoint_values(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def _gin_body(path):
  """The gin's bindings, without comments and the vocabulary's path."""
  return [line for line in open(path).read().splitlines()
          if line and not line.startswith("#") and "task_vocabulary" not in
          line]


@pytest.mark.parametrize("arch,dtype", [(SWITCH, "bfloat16"),
                                        (DENSE, "float32")],
                         ids=["switch_bfloat16", "dense_float32"])
def test_mtf_to_hf_to_mtf_is_bit_identical(tmp_path, arch, dtype):
  gin_file = mtf_fixtures.write_model_dir(str(tmp_path / "mtf"), arch, dtype)
  exported = export_hf.export_hf(str(tmp_path / "mtf"), str(tmp_path / "hf"),
                                 shard_bytes=40000)
  assert len(exported.weight_files) > 1  # sharded, with an index
  back = import_hf.import_hf(str(tmp_path / "hf"), str(tmp_path / "back"),
                             dtype=dtype, step=7)
  original = _checkpoint_values(str(tmp_path / "mtf" / "model.ckpt-7"))
  converted = _checkpoint_values(back.checkpoint_prefix)
  assert sorted(converted) == sorted(original)
  for name, value in original.items():
    assert converted[name].dtype == value.dtype, name
    np.testing.assert_array_equal(converted[name], value, err_msg=name)
  assert _gin_body(back.gin_file) == _gin_body(gin_file)


def test_exported_config_says_what_hf_needs(tmp_path):
  mtf_fixtures.write_model_dir(str(tmp_path / "mtf"), SWITCH, "bfloat16")
  config = export_hf.export_hf(str(tmp_path / "mtf"),
                               str(tmp_path / "hf"),
                               expert_capacity=96).config
  assert config["architectures"] == [
      "SwitchTransformersForConditionalGeneration"]
  assert (config["encoder_sparse_step"], config["decoder_sparse_step"]) == (
      2, 2)
  assert config["expert_capacity"] == 96
  assert config["decoder_start_token_id"] == 0
  assert config["feed_forward_proj"] == "gelu_new"
  assert config["torch_dtype"] == "bfloat16"
  assert config["router_jitter_noise"] == 0.01
  assert config["mesh_tf_routing"]["group_size"] == 64
  on_disk = json.load(open(tmp_path / "hf" / "config.json"))
  assert on_disk == config
  assert sorted(os.listdir(tmp_path / "hf")) == [
      "config.json", "conversion.json", "model.safetensors", "spiece.model"]


def _refused(tmp_path, arch, gin_params=(), edit_gin=None) -> str:
  mtf_fixtures.write_model_dir(str(tmp_path / "mtf"), arch)
  if edit_gin:
    gin_file = tmp_path / "mtf" / "model.gin"
    gin_file.write_text(edit_gin(gin_file.read_text()))
  with pytest.raises(ConversionError) as error:
    export_hf.export_hf(str(tmp_path / "mtf"), str(tmp_path / "hf"),
                        gin_params=gin_params)
  assert not (tmp_path / "hf").exists()
  assert "\n" not in str(error.value)
  return str(error.value)


def test_refuses_gated_experts(tmp_path):
  arch = dataclasses.replace(SWITCH, activation="geglu")
  assert "gated (GEGLU)" in _refused(tmp_path, arch)


def test_refuses_every_ffn_sparse_for_transformers_4_31(tmp_path):
  arch = dataclasses.replace(SWITCH, encoder=architecture.Stack(2, (0, 1)))
  assert "4.37" in _refused(tmp_path, arch)


def test_refuses_sparse_layers_hf_cannot_place(tmp_path):
  arch = dataclasses.replace(SWITCH, encoder=architecture.Stack(3, (2,)))
  assert "i % step == 1" in _refused(tmp_path, arch)


def test_refuses_absolute_positions(tmp_path):
  arch = dataclasses.replace(DENSE, positions=architecture.ABSOLUTE,
                             max_length=32)
  assert "absolute positions" in _refused(tmp_path, arch)


def test_refuses_a_relative_bias_per_layer(tmp_path):
  message = _refused(tmp_path, DENSE, gin_params=[
      "transformer_layers.SelfAttention.relative_attention_type = 'bias'"])
  assert "'bias'" in message and "bias_shared" in message


def test_refuses_a_checkpoint_that_is_not_the_gins_model(tmp_path):
  message = _refused(tmp_path, DENSE, gin_params=["d_ff = 48"])
  assert "model.ckpt-7" in message and "[16, 48]" in message


def test_refuses_a_model_dir_without_gin(tmp_path):
  mtf_fixtures.write_model_dir(str(tmp_path / "mtf"), DENSE)
  os.remove(tmp_path / "mtf" / "model.gin")
  with pytest.raises(ConversionError, match="--gin_file"):
    export_hf.export_hf(str(tmp_path / "mtf"), str(tmp_path / "hf"))


_TORCH_CASES = {
    "switch": (hf_names.SWITCH, hf_fixtures.SWITCH_CONFIG, "float32"),
    "t5_v1_0": (hf_names.T5, hf_fixtures.T5_V10_CONFIG, "float32"),
    "t5_v1_1_bfloat16": (hf_names.T5, hf_fixtures.T5_V11_CONFIG, "bfloat16"),
}


@pytest.mark.parametrize("case", sorted(_TORCH_CASES))
def test_hf_to_mtf_to_hf_is_bit_identical_and_loads(tmp_path, case):
  torch = pytest.importorskip("torch")
  import transformers  # pylint: disable=g-import-not-at-top
  from safetensors.torch import load_file  # pylint: disable=g-import-not-at-top
  family, config, dtype = _TORCH_CASES[case]
  source = str(tmp_path / "source")
  model = hf_fixtures.save_random_model(str(tmp_path / "float32"), family,
                                        config)
  model.to(getattr(torch, dtype)).save_pretrained(source,
                                                  safe_serialization=True)
  import_hf.import_hf(source, str(tmp_path / "mtf"), dtype=dtype,
                      vocabulary=hf_fixtures.SPIECE)
  export_hf.export_hf(str(tmp_path / "mtf"), str(tmp_path / "hf"),
                      expert_capacity=config.get("expert_capacity", 64))
  original = load_file(os.path.join(source, "model.safetensors"))
  exported = load_file(str(tmp_path / "hf" / "model.safetensors"))
  assert sorted(exported) == sorted(original)
  for name, tensor in original.items():
    assert exported[name].dtype == tensor.dtype, name
    assert torch.equal(exported[name], tensor), name
  model_class = type(model)
  loaded, info = model_class.from_pretrained(str(tmp_path / "hf"),
                                             output_loading_info=True)
  assert not info["unexpected_keys"] and not info["mismatched_keys"]
  tied = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
          "lm_head.weight"}
  assert set(info["missing_keys"]) <= tied
  for name, tensor in model.state_dict().items():
    assert torch.equal(loaded.state_dict()[name], tensor), name
  tokenizer = transformers.T5Tokenizer.from_pretrained(str(tmp_path / "hf"))
  assert tokenizer("Hello world").input_ids[-1] == 1  # EOS, as Mesh TF


@pytest.mark.parametrize("param,expected", [
    ("Switch.routing = 'ntlb'", "Switch.routing='ntlb' does not convert"),
    ("Switch.router_policy_eval = 'sample'",
     "Switch.router_policy_eval='sample' does not convert")])
def test_refuses_routings_transformers_does_not_have(tmp_path, param,
                                                     expected):
  assert expected in _refused(tmp_path, SWITCH, gin_params=[param])
