"""Mesh TF model dir -> Hugging Face folder that `from_pretrained` loads.

The model is what the dir's gin builds (model.gin of a converted dir, else
the operative_config.gin the CLI wrote, or the gin files given), read back
through Mesh TF (mtf_model.py); what transformers 4.31 cannot represent is
refused with the reason (hf_config.write). The checkpoint must hold exactly
the model's variables (optimizer slots and the step are skipped). Tensors
stream from the checkpoint into sharded safetensors files with the
`format: pt` metadata transformers requires, in the checkpoint's dtype; a
thread reads and transposes up to READ_AHEAD_BYTES ahead of the writes.
HF keeps no routing knobs but a per-sequence expert capacity, so the Mesh
TF routing is recorded in config.json's `mesh_tf_routing` entry, which
import_hf reads back.
"""

import contextlib
import dataclasses
import json
import os
from typing import List, Optional, Sequence, Tuple

from switch_mtf.checkpoints import hf_config
from switch_mtf.checkpoints import hf_folder
from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import model_dir as model_dir_lib
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_model
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import read_ahead
from switch_mtf.checkpoints import safetensors_file
from switch_mtf.checkpoints import tensor_plan
from switch_mtf.checkpoints import vocabulary as vocabulary_lib
from switch_mtf.checkpoints.errors import ConversionError

# transformers.SwitchTransformersConfig's default, the released ports' value.
DEFAULT_EXPERT_CAPACITY = 64
DEFAULT_SHARD_BYTES = 2 << 30
# Tensors read and split ahead of the file writes (read_ahead.py).
READ_AHEAD_BYTES = 64 << 20
_SAFETENSORS_METADATA = {"format": "pt"}


@dataclasses.dataclass(frozen=True)
class Result:
  hf_dir: str
  config: dict
  weight_files: Tuple[str, ...]
  bytes_written: int


def export_hf(model_dir: str, hf_dir: str,
              gin_files: Optional[Sequence[str]] = None,
              gin_params: Sequence[str] = (), step: Optional[int] = None,
              expert_capacity: int = DEFAULT_EXPERT_CAPACITY,
              vocabulary: Optional[str] = None, overwrite: bool = False,
              shard_bytes: int = DEFAULT_SHARD_BYTES) -> Result:
  """Writes the HF folder of a Mesh TF model dir's checkpoint.

  Args:
    model_dir: the Mesh TF model dir.
    hf_dir: the HF folder to create.
    gin_files: the model's gin (default: mtf_model.model_gin_files(model_dir)).
    gin_params: extra bindings, as for the CLI.
    step: the checkpoint to export (default: the latest).
    expert_capacity: HF's per-sequence expert capacity for Switch models.
    vocabulary: the SentencePiece model (default: the dir's spiece.model,
      else the task vocabulary the gin selects).
    overwrite: replace an existing hf_dir.
    shard_bytes: maximum bytes per safetensors file.
  """
  model_dir_lib.check_target(hf_dir, overwrite)
  if expert_capacity < 1:
    raise ConversionError("expert_capacity %d must be >= 1." % expert_capacity)
  checkpoint = mtf_checkpoint.MtfCheckpoint(
      mtf_checkpoint.latest(model_dir, step))
  if "shared/embedding" not in checkpoint.names():
    raise ConversionError("%s has no shared/embedding: not a Mesh TF "
                          "Transformer checkpoint." % checkpoint.prefix)
  vocab_size = checkpoint.shape("shared/embedding")[0]
  gin_files = list(gin_files or mtf_model.model_gin_files(model_dir))
  mtf_model.parse(gin_files, gin_params)
  arch = mtf_model.architecture_of(mtf_model.build(vocab_size), vocab_size)
  dtype = checkpoint.single_dtype()
  config = hf_config.write(arch, dtype, expert_capacity)
  tensor_plan.check_checkpoint(mtf_names.params(arch), checkpoint,
                               "the model's gin")
  vocabulary = vocabulary or vocabulary_lib.model_vocabulary(model_dir,
                                                             gin_files)
  vocabulary_lib.check(vocabulary, vocab_size, checkpoint.prefix)
  mappings = hf_names.mappings(arch, config["model_type"])
  specs = [(name, tensor_plan.source_shape(m), dtype)
           for m in mappings for name in m.sources]
  shards = _shards(specs, shard_bytes)

  final_dir = os.path.abspath(hf_dir)
  with model_dir_lib.staged(hf_dir, overwrite) as staging, (
      contextlib.closing(read_ahead.ahead(
          (piece for m in mappings
           for piece in tensor_plan.split(m, checkpoint.read(
               m.param.mtf_name))),
          READ_AHEAD_BYTES, lambda array: array.nbytes))) as arrays:
    written = 0
    for file_name, file_specs in shards:
      written += safetensors_file.write(
          os.path.join(staging, file_name), file_specs, arrays,
          _SAFETENSORS_METADATA)
    if len(shards) > 1:
      _write_json(os.path.join(staging, hf_folder.SAFETENSORS_INDEX), {
          "metadata": {"total_size": written},
          "weight_map": {name: file_name for file_name, file_specs in shards
                         for name, _, _ in file_specs}})
    _write_json(os.path.join(staging, hf_folder.CONFIG_FILE), config)
    vocabulary_lib.copy(vocabulary, staging)
    model_dir_lib.write_record(staging, {
        "converted_by": "tools/convert_checkpoint.py mtf-to-hf",
        "source": checkpoint.prefix,
        "gin_files": [os.path.abspath(f) for f in gin_files],
        "gin_params": list(gin_params),
        "step": checkpoint.step,
        "dtype": dtype,
    })
  return Result(final_dir, config,
                tuple(os.path.join(final_dir, f) for f, _ in shards), written)


def _shards(specs, shard_bytes: int):
  """[(file name, specs)]: files of at most shard_bytes (or one tensor)."""
  groups, current, size = [], [], 0
  for spec in specs:
    nbytes = safetensors_file.spec_bytes(spec)
    if current and size + nbytes > shard_bytes:
      groups.append(current)
      current, size = [], 0
    current.append(spec)
    size += nbytes
  groups.append(current)
  if len(groups) == 1:
    return [(hf_folder.SAFETENSORS_FILE, groups[0])]
  return [("model-%05d-of-%05d.safetensors" % (i + 1, len(groups)), group)
          for i, group in enumerate(groups)]


def _write_json(path: str, value) -> None:
  with open(path, "w") as f:
    json.dump(value, f, indent=2, sort_keys=True)
    f.write("\n")
