"""Tensors read one at a time from checkpoint files, whatever the format.

Every reader (safetensors, PyTorch zip, T5X, Mesh TF) exposes the same small
interface, so the conversions stream: names, shapes and dtypes come from the
files' headers without reading data, and `read` loads one tensor (a plain
read of its bytes, or a view of them) only when it is converted.
"""

import abc
from typing import Dict, List, Mapping, Sequence, Tuple

import ml_dtypes
import numpy as np

from switch_mtf.checkpoints.errors import ConversionError

# Our dtype names -> numpy types (bfloat16 from ml_dtypes, as TF's own).
NUMPY_DTYPES = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "int64": np.dtype(np.int64),
    "int32": np.dtype(np.int32),
    "int16": np.dtype(np.int16),
    "uint16": np.dtype(np.uint16),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "bool": np.dtype(np.bool_),
}
FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16")


def dtype_name(dtype: np.dtype) -> str:
  for name, numpy_dtype in NUMPY_DTYPES.items():
    if np.dtype(dtype) == numpy_dtype:
      return name
  raise ConversionError("unsupported tensor dtype %s." % dtype)


class TensorSource(abc.ABC):
  """Named tensors of one checkpoint, read lazily."""

  @abc.abstractmethod
  def names(self) -> List[str]:
    """Every tensor name, in file order."""

  @abc.abstractmethod
  def shape(self, name: str) -> Tuple[int, ...]:
    """The tensor's shape, from the file's header."""

  @abc.abstractmethod
  def dtype(self, name: str) -> str:
    """The tensor's dtype, one of NUMPY_DTYPES' names."""

  @abc.abstractmethod
  def read(self, name: str) -> np.ndarray:
    """The tensor's values (possibly a read-only view)."""

  @abc.abstractmethod
  def location(self, name: str) -> str:
    """The file that holds the tensor, for error messages."""


class ListedSource(TensorSource):
  """A source that lists every tensor's shape and dtype up front.

  Subclasses fill `_listed` (name -> (shape, dtype)) from their headers.
  """
  _listed: Dict[str, Tuple[Tuple[int, ...], str]]

  def names(self) -> List[str]:
    return list(self._listed)

  def shape(self, name: str) -> Tuple[int, ...]:
    return self._listed[name][0]

  def dtype(self, name: str) -> str:
    return self._listed[name][1]


class MergedSource(TensorSource):
  """Several sources seen as one (a sharded checkpoint's files)."""

  def __init__(self, sources: Sequence[TensorSource],
               expected: Mapping[str, str] = None):
    """expected: name -> file from an index, checked against the files."""
    self._owner: Dict[str, TensorSource] = {}
    for source in sources:
      for name in source.names():
        if name in self._owner:
          raise ConversionError(
              "tensor %s is in both %s and %s." % (
                  name, self._owner[name].location(name),
                  source.location(name)))
        self._owner[name] = source
    for name, file_name in (expected or {}).items():
      if name not in self._owner:
        raise ConversionError(
            "tensor %s: the index says it is in %s, which does not hold "
            "it." % (name, file_name))

  def names(self) -> List[str]:
    return list(self._owner)

  def shape(self, name: str) -> Tuple[int, ...]:
    return self._owner[name].shape(name)

  def dtype(self, name: str) -> str:
    return self._owner[name].dtype(name)

  def read(self, name: str) -> np.ndarray:
    return self._owner[name].read(name)

  def location(self, name: str) -> str:
    return self._owner[name].location(name)
