"""T5X checkpoints (msgpack + TensorStore), read one parameter at a time.

T5X writes `checkpoint_<step>/checkpoint`, a msgpack file (flax
serialization) of {'version', 'optimizer': {'target': params, 'state':
{'step', ...}}}, where each parameter is either the array itself or a
TensorStore spec of a zarr array stored beside it (kvstore path relative to
the checkpoint dir, e.g. `target.encoder.layers_0.mlp.wi.kernel`; 'gcs'
specs carry a dummy bucket). Since version 3 bfloat16 is stored natively;
before, as uint16 bits. Only `target` (the weights) is read; optimizer
state is skipped.
"""

import os
from typing import Any, Dict, Tuple

from flax import serialization
import numpy as np
import tensorstore

from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints.errors import ConversionError

CHECKPOINT_FILE = "checkpoint"
_NATIVE_BFLOAT16_VERSION = 3
# zarr dtype codes -> our dtype names.
_ZARR_DTYPES = {"<f8": "float64", "<f4": "float32", "<f2": "float16",
                "bfloat16": "bfloat16", "<i8": "int64", "<i4": "int32",
                "<u2": "uint16", "|u1": "uint8", "|b1": "bool"}


class T5XCheckpoint(tensor_source.ListedSource):
  """The parameters (`optimizer.target`) of a T5X checkpoint dir.

  Names are the parameter paths joined with '/', without 'target', e.g.
  `encoder/layers_0/attention/query/kernel`.
  """

  def __init__(self, path: str):
    if "://" in path:
      raise ConversionError(
          "%s: copy the checkpoint dir to local disk first (gsutil -m cp -r "
          "%s .); it is read with TensorStore's file driver." % (path, path))
    if os.path.isdir(path):
      path = os.path.join(path, CHECKPOINT_FILE)
    if not os.path.isfile(path):
      raise ConversionError("%s does not exist (expected a T5X checkpoint "
                            "dir, checkpoint_<step>/)." % path)
    self.path = path
    self.directory = os.path.dirname(path)
    with open(path, "rb") as f:
      raw = f.read()
    if raw.startswith(b"model_checkpoint_path"):
      raise ConversionError("%s is a TensorFlow checkpoint state file, not a "
                            "T5X checkpoint." % path)
    try:
      contents = serialization.msgpack_restore(raw)
    except Exception as e:  # msgpack raises several unrelated types.
      raise ConversionError("%s is not a T5X msgpack checkpoint (%s)."
                            % (path, e)) from e
    if not isinstance(contents, dict):
      raise ConversionError("%s is not a T5X checkpoint." % path)
    self.version = int(contents.get("version", 0))
    state = contents.get("optimizer", contents)
    if not isinstance(state, dict) or "target" not in state:
      raise ConversionError("%s has no optimizer target (parameters)." % path)
    step = state.get("state", {}).get("step")
    self.step = int(np.asarray(step)) if step is not None else None
    self._leaves: Dict[str, Any] = {}
    _flatten(state["target"], "", self._leaves)
    self._listed = {name: self._describe(name, leaf)
                    for name, leaf in self._leaves.items()}

  def _describe(self, name: str, leaf) -> Tuple[Tuple[int, ...], str]:
    if isinstance(leaf, np.ndarray):
      return tuple(leaf.shape), self._weights_dtype(
          tensor_source.dtype_name(leaf.dtype))
    metadata = leaf.get("metadata", {})
    if "shape" not in metadata or "dtype" not in metadata:
      metadata = self._open(name).spec().to_json()["metadata"]
    # The spec's own "dtype" (a NumPy name) overrides the zarr code.
    code = leaf.get("dtype", metadata["dtype"])
    dtype = _ZARR_DTYPES.get(code, code)
    if dtype not in tensor_source.NUMPY_DTYPES:
      raise ConversionError("%s: parameter %s has dtype %r, which is not "
                            "supported." % (self.path, name, code))
    return tuple(metadata["shape"]), self._weights_dtype(dtype)

  def _weights_dtype(self, dtype: str) -> str:
    if dtype == "uint16" and self.version < _NATIVE_BFLOAT16_VERSION:
      return "bfloat16"  # version < 3 stored bfloat16 as its uint16 bits
    return dtype

  def _open(self, name: str):
    spec = dict(self._leaves[name])
    kvstore = dict(spec.get("kvstore", {}))
    relative = kvstore.get("path", spec.pop("path", None))
    if relative is None:
      raise ConversionError("%s: parameter %s has a TensorStore spec without "
                            "a path." % (self.path, name))
    spec["kvstore"] = {"driver": "file",
                       "path": os.path.join(self.directory, relative)}
    try:
      return tensorstore.open(spec, open=True).result()
    except ValueError as e:
      raise ConversionError("%s: parameter %s cannot be opened at %s (%s)."
                            % (self.path, name, spec["kvstore"]["path"],
                               str(e).splitlines()[0])) from e

  def read(self, name: str) -> np.ndarray:
    leaf = self._leaves[name]
    if isinstance(leaf, np.ndarray):
      array = leaf
    else:
      try:
        array = self._open(name).read().result()
      except ValueError as e:
        raise ConversionError("%s: parameter %s cannot be read (%s)." % (
            self.path, name, str(e).splitlines()[0])) from e
    numpy_dtype = tensor_source.NUMPY_DTYPES[self.dtype(name)]
    if array.dtype != numpy_dtype:
      array = array.view(numpy_dtype)  # uint16 or foreign bfloat16 bits
    if tuple(array.shape) != self.shape(name):
      raise ConversionError("%s: parameter %s has shape %s, its spec says "
                            "%s." % (self.path, name, list(array.shape),
                                     list(self.shape(name))))
    return array

  def location(self, name: str) -> str:
    return self.path


def _is_spec(value) -> bool:
  return isinstance(value, dict) and "driver" in value and (
      "kvstore" in value or "path" in value)


def _flatten(tree, prefix: str, out: Dict[str, Any]) -> None:
  for key, value in tree.items():
    name = prefix + str(key)
    if isinstance(value, dict) and not _is_spec(value):
      _flatten(value, name + "/", out)
    else:
      out[name] = value if _is_spec(value) else np.asarray(value)
