"""`pytorch_model.bin` read without torch, one tensor at a time.

The google/switch-base-* repositories ship only this file. torch.save
(torch >= 1.6) writes a zip archive: `<name>/data.pkl` pickles the state
dict, in which each tensor refers to a storage `<name>/data/<key>` stored
uncompressed in the archive. A restricted unpickler rebuilds only state
dicts of tensors (it runs no other code a pickle could name), and each
tensor is read from its storage's bytes in the file when it is used, so
reading needs neither torch nor memory for the whole model.
"""

import collections
import dataclasses
import os
import pickle
import struct
import sys
import zipfile
from typing import Dict, List, Tuple

import numpy as np

from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints.errors import ConversionError

# torch storage classes pickled by torch.save -> our dtype names.
_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32",
    "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool"}
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # a zip local file header
_LOCAL_HEADER_SIGNATURE = 0x04034B50
assert sys.byteorder == "little", "torch_zip needs a little-endian CPU"


@dataclasses.dataclass(frozen=True)
class _Storage:
  key: str
  dtype: str
  numel: int


@dataclasses.dataclass(frozen=True)
class _TensorRef:
  storage: _Storage
  offset: int
  shape: Tuple[int, ...]
  stride: Tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *unused_args):
  return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused_args):
  return data


class _StateDictUnpickler(pickle.Unpickler):
  """Unpickles a state dict of tensors and nothing else."""

  _CLASSES = {
      ("collections", "OrderedDict"): collections.OrderedDict,
      ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
      ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
  }

  def __init__(self, file, path: str):
    super().__init__(file)
    self._path = path

  def find_class(self, module, name):
    if (module, name) in self._CLASSES:
      return self._CLASSES[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    raise ConversionError(
        "%s pickles %s.%s, which a state dict of tensors does not hold; "
        "only plain state dicts (model.state_dict()) convert."
        % (self._path, module, name))

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
            and pid[1] in _STORAGE_DTYPES.values()):
      raise ConversionError("%s refers to an unsupported storage %r."
                            % (self._path, pid))
    _, dtype, key, _, numel = pid
    return _Storage(str(key), dtype, int(numel))


class TorchZipFile(tensor_source.TensorSource):
  """The tensors of a zip-format `torch.save` state dict."""

  def __init__(self, path: str):
    self.path = path
    if not zipfile.is_zipfile(path):
      raise ConversionError(
          "%s is not a zip-format PyTorch checkpoint (torch >= 1.6 writes "
          "one; older pickles need torch to read): re-save it with a recent "
          "torch.save, or as model.safetensors." % path)
    with zipfile.ZipFile(path) as archive:
      infos = {info.filename: info for info in archive.infolist()}
      pickles = [n for n in infos if n.endswith("/data.pkl")]
      if len(pickles) != 1:
        raise ConversionError("%s has %d data.pkl entries, not 1."
                              % (path, len(pickles)))
      self._prefix = pickles[0][:-len("data.pkl")]
      byteorder = self._prefix + "byteorder"
      if byteorder in infos and archive.read(byteorder) != b"little":
        raise ConversionError("%s stores big-endian tensors; re-save it on a "
                              "little-endian machine." % path)
      with archive.open(pickles[0]) as f:
        state = _StateDictUnpickler(f, path).load()
    if not isinstance(state, dict) or not all(
        isinstance(v, _TensorRef) for v in state.values()):
      raise ConversionError("%s does not hold a state dict of tensors."
                            % path)
    self._tensors: Dict[str, _TensorRef] = dict(state)
    self._storage_offsets = {}
    for name, ref in self._tensors.items():
      self._check(name, ref, infos)

  def _check(self, name: str, ref: _TensorRef, infos) -> None:
    entry = self._prefix + "data/" + ref.storage.key
    info = infos.get(entry)
    if info is None:
      raise ConversionError("%s: tensor %s needs storage %s, which the "
                            "archive lacks." % (self.path, name, entry))
    if info.compress_type != zipfile.ZIP_STORED:
      raise ConversionError("%s: storage %s is compressed; torch.save never "
                            "compresses, so the file was re-packed."
                            % (self.path, entry))
    itemsize = tensor_source.NUMPY_DTYPES[ref.storage.dtype].itemsize
    if info.file_size != ref.storage.numel * itemsize:
      raise ConversionError(
          "%s is truncated or corrupt: storage %s has %d bytes, tensor %s "
          "needs %d." % (self.path, entry, info.file_size, name,
                         ref.storage.numel * itemsize))
    if ref.shape and any(s == 0 for s in ref.shape):
      last = ref.offset
    else:
      last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape,
                                                          ref.stride))
    if ref.offset < 0 or last >= max(ref.storage.numel, 1):
      raise ConversionError(
          "%s: tensor %s (offset %d, shape %s, stride %s) overruns its "
          "storage of %d elements." % (self.path, name, ref.offset,
                                       list(ref.shape), list(ref.stride),
                                       ref.storage.numel))
    if entry not in self._storage_offsets:
      self._storage_offsets[entry] = self._data_offset(info)

  def _data_offset(self, info: zipfile.ZipInfo) -> int:
    """Where an entry's bytes start: after its local header."""
    with open(self.path, "rb") as f:
      f.seek(info.header_offset)
      fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
    if fields[0] != _LOCAL_HEADER_SIGNATURE:
      raise ConversionError("%s is corrupt: no zip header for %s."
                            % (self.path, info.filename))
    name_length, extra_length = fields[9], fields[10]
    start = info.header_offset + _LOCAL_HEADER.size + name_length + (
        extra_length)
    if start + info.file_size > os.path.getsize(self.path):
      raise ConversionError("%s is truncated: %s ends past the end of the "
                            "file." % (self.path, info.filename))
    return start

  def names(self) -> List[str]:
    return list(self._tensors)

  def shape(self, name: str) -> Tuple[int, ...]:
    return self._tensors[name].shape

  def dtype(self, name: str) -> str:
    return self._tensors[name].storage.dtype

  def read(self, name: str) -> np.ndarray:
    # Reads only the elements the tensor spans (a plain read: a memory map
    # would keep every page it touched resident until closed).
    ref = self._tensors[name]
    numpy_dtype = tensor_source.NUMPY_DTYPES[ref.storage.dtype]
    span = 1 + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride)) if all(
        ref.shape) else 0
    values = np.fromfile(
        self.path, dtype=numpy_dtype, count=span,
        offset=self._storage_offsets[self._prefix + "data/" + ref.storage.key]
        + ref.offset * numpy_dtype.itemsize)
    return np.lib.stride_tricks.as_strided(
        values, shape=ref.shape,
        strides=[s * numpy_dtype.itemsize for s in ref.stride],
        writeable=False)

  def location(self, name: str) -> str:
    return self.path
