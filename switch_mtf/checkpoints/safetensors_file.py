"""safetensors files, read and written one tensor at a time.

The format (github.com/huggingface/safetensors): an 8-byte little-endian
header length, a JSON header mapping each name to its dtype, shape and byte
range, then the raw little-endian data. The installed `safetensors` package
(0.3.1) cannot hand bfloat16 tensors to NumPy and only writes whole dicts,
so this module reads one tensor at a time at its offset (nothing else is
loaded; a truncated file is caught from the header alone) and writes header
first, then data as it is produced. tests/checkpoints check it
against the package on float32 files and against transformers' own loader.
"""

import json
import os
import struct
import sys
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple

import numpy as np

from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints.errors import ConversionError

# safetensors dtype codes <-> our dtype names.
_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16",
           "BF16": "bfloat16", "I64": "int64", "I32": "int32", "I16": "int16",
           "I8": "int8", "U8": "uint8", "BOOL": "bool"}
_CODES = {name: code for code, name in _DTYPES.items()}
_MAX_HEADER_BYTES = 100 * 1024 * 1024
# The data is little-endian; NumPy views it in the machine's byte order.
assert sys.byteorder == "little", "safetensors_file needs a little-endian CPU"
METADATA_KEY = "__metadata__"


class SafetensorsFile(tensor_source.ListedSource):
  """One .safetensors file; checks the header against the file's size."""

  def __init__(self, path: str):
    self.path = path
    size = os.path.getsize(path)
    with open(path, "rb") as f:
      prefix = f.read(8)
      if len(prefix) < 8:
        raise ConversionError("%s is not a safetensors file: %d bytes, "
                              "shorter than its 8-byte header length."
                              % (path, len(prefix)))
      (header_length,) = struct.unpack("<Q", prefix)
      if header_length > min(size - 8, _MAX_HEADER_BYTES):
        raise ConversionError(
            "%s is truncated or not a safetensors file: its header claims "
            "%d bytes, the file has %d." % (path, header_length, size))
      try:
        header = json.loads(f.read(header_length))
      except ValueError as e:
        raise ConversionError("%s is not a safetensors file: its header is "
                              "not JSON (%s)." % (path, e)) from e
    if not isinstance(header, dict):
      raise ConversionError("%s is not a safetensors file: its header is not "
                            "a JSON object." % path)
    self.metadata: Dict[str, str] = header.pop(METADATA_KEY, None) or {}
    self._data_start = 8 + header_length
    self._listed = {}
    self._offsets: Dict[str, int] = {}
    for name, entry in header.items():
      dtype, shape, begin = self._check_entry(name, entry, size)
      self._listed[name] = (shape, dtype)
      self._offsets[name] = begin

  def _check_entry(self, name: str, entry, file_size: int):
    try:
      code, shape = entry["dtype"], tuple(int(d) for d in entry["shape"])
      begin, end = (int(x) for x in entry["data_offsets"])
    except (KeyError, TypeError, ValueError) as e:
      raise ConversionError("%s: tensor %s has a malformed header entry %r."
                            % (self.path, name, entry)) from e
    if code not in _DTYPES:
      raise ConversionError("%s: tensor %s has dtype %s, which is not a "
                            "safetensors dtype." % (self.path, name, code))
    dtype = _DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * tensor_source.NUMPY_DTYPES[
        dtype].itemsize
    if end - begin != expected or begin < 0:
      raise ConversionError(
          "%s: tensor %s %s%s spans bytes [%d, %d), not %d bytes."
          % (self.path, name, dtype, list(shape), begin, end, expected))
    if self._data_start + end > file_size:
      raise ConversionError(
          "%s is truncated: tensor %s ends at byte %d, the file has %d."
          % (self.path, name, self._data_start + end, file_size))
    return dtype, shape, begin

  def read(self, name: str) -> np.ndarray:
    # A plain read, not a memory map: mapped pages stay resident (and count
    # as the process's memory) until the whole file is closed.
    shape, dtype = self._listed[name]
    begin = self._offsets[name]
    numpy_dtype = tensor_source.NUMPY_DTYPES[dtype]
    count = int(np.prod(shape, dtype=np.int64))
    return np.fromfile(self.path, dtype=numpy_dtype, count=count,
                       offset=self._data_start + begin).reshape(shape)

  def location(self, name: str) -> str:
    return self.path


def spec_bytes(spec: Tuple[str, Tuple[int, ...], str]) -> int:
  """Data bytes of a (name, shape, dtype) tensor."""
  _, shape, dtype = spec
  return int(np.prod(shape, dtype=np.int64)) * tensor_source.NUMPY_DTYPES[
      dtype].itemsize


def header_bytes(specs: Sequence[Tuple[str, Tuple[int, ...], str]],
                 metadata: Optional[Mapping[str, str]]) -> bytes:
  """The 8-byte length and JSON header for tensors stored in `specs` order."""
  header = {}
  if metadata:
    header[METADATA_KEY] = dict(metadata)
  offset = 0
  for name, shape, dtype in specs:
    size = spec_bytes((name, shape, dtype))
    header[name] = {"dtype": _CODES[dtype], "shape": list(shape),
                    "data_offsets": [offset, offset + size]}
    offset += size
  text = json.dumps(header, separators=(",", ":")).encode()
  text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
  return struct.pack("<Q", len(text)) + text


def write(path: str, specs: Sequence[Tuple[str, Tuple[int, ...], str]],
          arrays: Iterator[np.ndarray],
          metadata: Optional[Mapping[str, str]] = None) -> int:
  """Writes one file from arrays produced in `specs` order; returns bytes.

  Takes exactly len(specs) arrays from the iterator (so one iterator can
  fill several shards), holding one at a time. Raises ConversionError if an
  array does not match its spec or the iterator runs out.
  """
  written = 0
  with open(path, "wb") as f:
    f.write(header_bytes(specs, metadata))
    iterator = iter(arrays)
    for name, shape, dtype in specs:
      array = next(iterator, None)
      if array is None:
        raise ConversionError("%s: no data for tensor %s." % (path, name))
      if (tuple(array.shape) != tuple(shape)
          or tensor_source.dtype_name(array.dtype) != dtype):
        raise ConversionError(
            "%s: tensor %s is %s%s, the header says %s%s." % (
                path, name, tensor_source.dtype_name(array.dtype),
                list(array.shape), dtype, list(shape)))
      data = np.ascontiguousarray(array).reshape(-1)
      f.write(data.view(np.uint8).data)  # no copy of the tensor
      written += data.nbytes
  return written
