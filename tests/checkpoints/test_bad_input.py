"""Bad Hugging Face input: a one-line error naming the culprit, no output.

Each case breaks one thing in an otherwise valid folder (written without
torch: transformers' config class, tensors named as hf_names says; the
mapping itself is tested against transformers' models elsewhere) and checks
that import_hf raises a ConversionError whose single line names the tensor,
key or file, before the output dir exists.
"""

import json
import os

import numpy as np
import pytest

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import import_hf
from switch_mtf.checkpoints import released
from switch_mtf.checkpoints import safetensors_file
from switch_mtf.checkpoints.errors import ConversionError
from tests.checkpoints import hf_fixtures

ARCH = architecture.Architecture(
    vocab_size=hf_fixtures.VOCAB_SIZE, d_model=16, d_ff=32, num_heads=2,
    d_kv=8, encoder=architecture.Stack(2, (1,)),
    decoder=architecture.Stack(2, (1,)), activation="relu",
    tied_embeddings=True, num_experts=2, routing=released.DEFAULT_ROUTING)
CONFIG = dict(vocab_size=hf_fixtures.VOCAB_SIZE, d_model=16, d_ff=32,
              num_heads=2, d_kv=8, num_layers=2, num_decoder_layers=2,
              num_experts=2, num_sparse_encoder_layers=1,
              num_sparse_decoder_layers=1)
WEIGHTS = "model.safetensors"


@pytest.fixture
def hf_dir(tmp_path):
  path = str(tmp_path / "hf")
  hf_fixtures.write_synthetic(path, ARCH, hf_names.SWITCH, CONFIG)
  return path


def _refused(hf_dir, tmp_path, **kwargs) -> str:
  output = str(tmp_path / "out")
  with pytest.raises(ConversionError) as error:
    import_hf.import_hf(hf_dir, output, **kwargs)
  message = str(error.value)
  assert "\n" not in message
  assert not os.path.exists(output)
  assert not [n for n in os.listdir(tmp_path) if ".partial-" in n]
  return message


def _rewrite_weights(hf_dir, edit):
  """Rewrites model.safetensors with edit({name: array}) applied."""
  path = os.path.join(hf_dir, WEIGHTS)
  source = safetensors_file.SafetensorsFile(path)
  tensors = {name: np.array(source.read(name)) for name in source.names()}
  del source
  edit(tensors)
  safetensors_file.write(
      path, [(n, a.shape, "float32") for n, a in tensors.items()],
      tensors.values(), {"format": "pt"})


def _edit_config(hf_dir, **changes):
  path = os.path.join(hf_dir, "config.json")
  config = json.load(open(path))
  config.update(changes)
  json.dump(config, open(path, "w"))


def test_the_valid_folder_converts(hf_dir, tmp_path):
  result = import_hf.import_hf(hf_dir, str(tmp_path / "out"))
  assert os.path.isfile(result.gin_file)


def test_missing_tensor(hf_dir, tmp_path):
  name = "decoder.block.1.layer.2.mlp.experts.expert_1.wi.weight"
  _rewrite_weights(hf_dir, lambda t: t.pop(name))
  message = _refused(hf_dir, tmp_path)
  assert name in message and WEIGHTS in message and "lacks" in message


def test_extra_tensor(hf_dir, tmp_path):
  name = "encoder.block.0.layer.1.mlp.wi.bias"
  _rewrite_weights(hf_dir, lambda t: t.update({name: np.zeros(32, "f4")}))
  message = _refused(hf_dir, tmp_path)
  assert name in message and "does not use" in message


def test_misshaped_tensor(hf_dir, tmp_path):
  name = "encoder.block.1.layer.0.SelfAttention.k.weight"
  _rewrite_weights(hf_dir, lambda t: t.update({name: np.zeros((16, 8),
                                                             "f4")}))
  message = _refused(hf_dir, tmp_path)
  assert name in message and "[16, 8]" in message and "[16, 16]" in message


def test_config_that_contradicts_the_tensors(hf_dir, tmp_path):
  _edit_config(hf_dir, num_experts=3)
  message = _refused(hf_dir, tmp_path)
  assert "expert_2" in message and "config.json" in message


def test_truncated_file(hf_dir, tmp_path):
  path = os.path.join(hf_dir, WEIGHTS)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 100)
  message = _refused(hf_dir, tmp_path)
  assert "truncated" in message and path in message and "tensor" in message


def test_not_a_safetensors_file(hf_dir, tmp_path):
  path = os.path.join(hf_dir, WEIGHTS)
  with open(path, "wb") as f:
    f.write(b"PK\x03\x04 this is something else entirely")
  message = _refused(hf_dir, tmp_path)
  assert path in message and "not a safetensors file" in message


def test_not_a_zip_pytorch_file(hf_dir, tmp_path):
  os.remove(os.path.join(hf_dir, WEIGHTS))
  with open(os.path.join(hf_dir, "pytorch_model.bin"), "wb") as f:
    f.write(b"\x80\x02legacy pickle")
  message = _refused(hf_dir, tmp_path)
  assert "pytorch_model.bin" in message and "zip-format" in message


@pytest.mark.parametrize("key,value,expected", [
    ("relative_attention_max_distance", 64, "hard-codes 128"),
    ("dense_act_fn", "gelu", "gelu_new"),
    ("router_bias", True, "no bias"),
    ("router_dtype", "float16", "router_dtype"),
    ("model_type", "bart", "model_type"),
])
def test_unrepresentable_config_values(hf_dir, tmp_path, key, value,
                                       expected):
  _edit_config(hf_dir, **{key: value})
  message = _refused(hf_dir, tmp_path)
  assert key in message and expected in message


def test_tied_copy_that_differs(hf_dir, tmp_path):
  _rewrite_weights(hf_dir, lambda t: t.update({
      "lm_head.weight": t["shared.weight"] + 1.0}))
  message = _refused(hf_dir, tmp_path)
  assert "lm_head.weight" in message and "ties" in message


def test_vocabulary_of_another_size(hf_dir, tmp_path):
  _edit_config(hf_dir, vocab_size=32128)
  message = _refused(hf_dir, tmp_path)
  assert "spiece.model" in message and "32128" in message


def test_missing_vocabulary_and_config(hf_dir, tmp_path):
  os.remove(os.path.join(hf_dir, "spiece.model"))
  assert "--vocabulary" in _refused(hf_dir, tmp_path)
  os.remove(os.path.join(hf_dir, "config.json"))
  assert "config.json" in _refused(hf_dir, tmp_path)


def test_sparse_step_one_saved_by_old_transformers(tmp_path):
  dense = architecture.Architecture(
      vocab_size=hf_fixtures.VOCAB_SIZE, d_model=16, d_ff=32, num_heads=2,
      d_kv=8, encoder=architecture.Stack(2), decoder=architecture.Stack(2),
      activation="relu", tied_embeddings=True)
  hf_dir = str(tmp_path / "hf")
  hf_fixtures.write_synthetic(hf_dir, dense, hf_names.SWITCH, CONFIG)
  _edit_config(hf_dir, encoder_sparse_step=1, decoder_sparse_step=0)
  message = _refused(hf_dir, tmp_path)
  assert "no router" in message and "4.37" in message


def test_existing_output_needs_overwrite(hf_dir, tmp_path):
  output = tmp_path / "out"
  output.mkdir()
  (output / "keep.txt").write_text("mine")
  with pytest.raises(ConversionError, match="--overwrite"):
    import_hf.import_hf(hf_dir, str(output))
  assert (output / "keep.txt").read_text() == "mine"
  import_hf.import_hf(hf_dir, str(output), overwrite=True)
  assert sorted(os.listdir(output))[0] == "checkpoint"
  assert not (output / "keep.txt").exists()


def test_a_failure_while_writing_leaves_no_output(hf_dir, tmp_path,
                                                  monkeypatch):
  def fail(*unused_args, **unused_kwargs):
    raise OSError("disk full")
  monkeypatch.setattr(import_hf.vocabulary_lib, "copy", fail)
  with pytest.raises(OSError, match="disk full"):
    import_hf.import_hf(hf_dir, str(tmp_path / "out"))
  assert sorted(os.listdir(tmp_path)) == ["hf"]
