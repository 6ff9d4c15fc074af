"""Our readers and writers agree with the formats' own libraries.

safetensors files against the `safetensors` package (and, for bfloat16,
safetensors' torch loader), `pytorch_model.bin` against torch.load, Mesh TF
checkpoints against TensorFlow's checkpoint reader.
"""

import os

import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy
import tensorflow.compat.v1 as tf

from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import safetensors_file
from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints import torch_zip
from switch_mtf.checkpoints.errors import ConversionError


def _arrays(seed=0):
  rng = np.random.RandomState(seed)
  return {"a.weight": rng.normal(size=(3, 5)).astype(np.float32),
          "b": rng.normal(size=(7,)).astype(np.float16),
          "scalar": np.array(2.5, np.float32),
          "empty": np.zeros((0, 4), np.float32)}


def test_reads_files_written_by_the_safetensors_package(tmp_path):
  path = str(tmp_path / "x.safetensors")
  arrays = _arrays()
  safetensors.numpy.save_file(arrays, path, metadata={"format": "pt"})
  ours = safetensors_file.SafetensorsFile(path)
  assert sorted(ours.names()) == sorted(arrays)
  assert ours.metadata == {"format": "pt"}
  for name, array in arrays.items():
    assert ours.shape(name) == array.shape
    assert ours.dtype(name) == tensor_source.dtype_name(array.dtype)
    np.testing.assert_array_equal(ours.read(name), array)


def test_the_safetensors_package_reads_files_we_write(tmp_path):
  path = str(tmp_path / "y.safetensors")
  arrays = _arrays(1)
  written = safetensors_file.write(
      path, [(n, a.shape, tensor_source.dtype_name(a.dtype))
             for n, a in arrays.items()], iter(arrays.values()),
      {"format": "pt"})
  assert written == sum(a.nbytes for a in arrays.values())
  with safetensors.safe_open(path, framework="np") as f:
    assert f.metadata() == {"format": "pt"}
    for name, array in arrays.items():
      np.testing.assert_array_equal(f.get_tensor(name), array)


def test_bfloat16_round_trips_and_torch_reads_it(tmp_path):
  path = str(tmp_path / "bf16.safetensors")
  values = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
  array = values.astype(ml_dtypes.bfloat16)
  safetensors_file.write(path, [("w", (3, 4), "bfloat16")], iter([array]))
  ours = safetensors_file.SafetensorsFile(path)
  assert ours.dtype("w") == "bfloat16"
  np.testing.assert_array_equal(ours.read("w"), array)
  torch = pytest.importorskip("torch")
  from safetensors.torch import load_file  # pylint: disable=g-import-not-at-top
  loaded = load_file(path)["w"]
  assert loaded.dtype == torch.bfloat16
  np.testing.assert_array_equal(loaded.float().numpy(),
                                array.astype(np.float32))


def test_writer_refuses_arrays_unlike_the_header(tmp_path):
  path = str(tmp_path / "z.safetensors")
  with pytest.raises(ConversionError, match="tensor w is float32"):
    safetensors_file.write(path, [("w", (2,), "float16")],
                           iter([np.zeros(2, np.float32)]))
  with pytest.raises(ConversionError, match="no data for tensor v"):
    safetensors_file.write(path, [("w", (2,), "float32"),
                                  ("v", (1,), "float32")],
                           iter([np.zeros(2, np.float32)]))


def test_short_and_lying_headers_are_reported(tmp_path):
  path = tmp_path / "bad.safetensors"
  path.write_bytes(b"\x01\x02")
  with pytest.raises(ConversionError, match="shorter than its 8-byte"):
    safetensors_file.SafetensorsFile(str(path))
  path.write_bytes((10 ** 6).to_bytes(8, "little") + b"{}")
  with pytest.raises(ConversionError, match="header claims 1000000 bytes"):
    safetensors_file.SafetensorsFile(str(path))


def test_torch_zip_reader_equals_torch_load(tmp_path):
  torch = pytest.importorskip("torch")
  base = torch.randn(4, 6)
  state = {"f32": base, "tied": base,  # one storage, two names
           "transposed": base.t(),  # a strided view
           "row": base[2],  # an offset into the storage
           "bf16": torch.randn(3, 2).to(torch.bfloat16),
           "f16": torch.randn(5).half()}
  path = str(tmp_path / "pytorch_model.bin")
  torch.save(state, path)
  ours = torch_zip.TorchZipFile(path)
  assert ours.names() == list(state)
  for name, tensor in state.items():
    assert ours.shape(name) == tuple(tensor.shape)
    np.testing.assert_array_equal(np.asarray(ours.read(name), np.float32),
                                  tensor.float().numpy())


def test_torch_zip_reader_runs_no_foreign_pickle_code(tmp_path):
  torch = pytest.importorskip("torch")
  path = str(tmp_path / "pytorch_model.bin")
  torch.save({"w": torch.zeros(2), "callback": os.getcwd}, path)
  with pytest.raises(ConversionError, match="pickles posix.getcwd"):
    torch_zip.TorchZipFile(path)


def test_sharded_mtf_checkpoint_reads_back_with_tensorflows_reader(tmp_path):
  arrays = {"a/kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
            "b/scale": np.ones(4, ml_dtypes.bfloat16),
            "c/kernel": np.full((2, 2), 7, np.float32)}
  prefix = mtf_checkpoint.write(str(tmp_path), 42, arrays.items(),
                                shard_bytes=20)
  assert prefix == str(tmp_path / "model.ckpt-42")
  assert sorted(n for n in os.listdir(tmp_path) if ".data-" in n) == [
      "model.ckpt-42.data-0000%d-of-00003" % i for i in range(3)]
  assert tf.train.latest_checkpoint(str(tmp_path)) == prefix
  reader = tf.train.load_checkpoint(prefix)
  for name, array in arrays.items():
    value = reader.get_tensor(name)
    assert value.dtype == array.dtype
    np.testing.assert_array_equal(value, array)
  assert reader.get_tensor("global_step") == 42
  ours = mtf_checkpoint.MtfCheckpoint(prefix)
  assert ours.names() == sorted(arrays) and ours.step == 42
  assert ours.dtype("b/scale") == "bfloat16"
