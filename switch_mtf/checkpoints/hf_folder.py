"""A Hugging Face model folder: config.json, weight files, spiece.model.

`save_pretrained` writes one `model.safetensors` or `pytorch_model.bin`, or
shards listed by `model.safetensors.index.json` /
`pytorch_model.bin.index.json`; the Hub's google/switch-base-* repos hold
`pytorch_model.bin`. safetensors is preferred when both exist (it is what
from_pretrained loads first).
"""

import dataclasses
import json
import os
from typing import Any, Dict, Optional

from switch_mtf.checkpoints import safetensors_file
from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints import torch_zip
from switch_mtf.checkpoints.errors import ConversionError

CONFIG_FILE = "config.json"
SPIECE_FILE = "spiece.model"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_FILE = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"
_WEIGHTS = ((SAFETENSORS_FILE, None), (SAFETENSORS_INDEX, "safetensors"),
            (TORCH_FILE, None), (TORCH_INDEX, "torch"))


@dataclasses.dataclass
class HfFolder:
  path: str
  config: Dict[str, Any]
  config_path: str
  tensors: tensor_source.TensorSource
  weight_files: list
  vocabulary: Optional[str]  # spiece.model, if the folder has one


def open_folder(path: str) -> HfFolder:
  """Reads the folder's config and weight headers (no tensor data)."""
  if not os.path.isdir(path):
    raise ConversionError("%s is not a directory (expected a Hugging Face "
                          "model folder, e.g. from save_pretrained)." % path)
  config_path = os.path.join(path, CONFIG_FILE)
  if not os.path.isfile(config_path):
    raise ConversionError("%s has no %s." % (path, CONFIG_FILE))
  config = _read_json(config_path)
  for name, kind in _WEIGHTS:
    weights_path = os.path.join(path, name)
    if not os.path.isfile(weights_path):
      continue
    if kind is None:
      files = [weights_path]
      tensors = _open_weights(weights_path)
    else:
      weight_map = _read_json(weights_path).get("weight_map")
      if not isinstance(weight_map, dict) or not weight_map:
        raise ConversionError("%s has no weight_map." % weights_path)
      files = [os.path.join(path, f) for f in sorted(set(
          weight_map.values()))]
      for f in files:
        if not os.path.isfile(f):
          raise ConversionError("%s lists %s, which does not exist."
                                % (weights_path, f))
      tensors = tensor_source.MergedSource(
          [_open_weights(f) for f in files], weight_map)
    spiece = os.path.join(path, SPIECE_FILE)
    return HfFolder(path, config, config_path, tensors, files,
                    spiece if os.path.isfile(spiece) else None)
  raise ConversionError(
      "%s has no weights: expected one of %s." % (
          path, ", ".join(name for name, _ in _WEIGHTS)))


def _open_weights(path: str) -> tensor_source.TensorSource:
  if path.endswith(".safetensors"):
    return safetensors_file.SafetensorsFile(path)
  return torch_zip.TorchZipFile(path)


def _read_json(path: str) -> Dict[str, Any]:
  try:
    with open(path) as f:
      value = json.load(f)
  except ValueError as e:
    raise ConversionError("%s is not valid JSON (%s)." % (path, e)) from e
  if not isinstance(value, dict):
    raise ConversionError("%s is not a JSON object." % path)
  return value
