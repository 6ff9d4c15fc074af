"""Hugging Face folder -> Mesh TF model dir (T5 v1.0 / v1.1, Switch).

Every check (config keys, tensor names, shapes, dtypes, tied copies, the
vocabulary) runs before the output dir is created; then tensors stream from
the source, one Mesh TF variable at a time, into a sharded checkpoint.
"""

import os
from typing import Optional

from switch_mtf.checkpoints import hf_config
from switch_mtf.checkpoints import hf_folder
from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import model_dir as model_dir_lib
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_output
from switch_mtf.checkpoints import tensor_plan
from switch_mtf.checkpoints import vocabulary as vocabulary_lib
from switch_mtf.checkpoints.errors import ConversionError


def import_hf(hf_dir: str, model_dir: str, dtype: str = "bfloat16",
              step: int = 0, vocabulary: Optional[str] = None,
              overwrite: bool = False,
              shard_bytes: int = mtf_checkpoint.DEFAULT_SHARD_BYTES
              ) -> mtf_output.Result:
  """Converts an HF T5 / Switch folder into a Mesh TF model dir.

  Args:
    hf_dir: folder with config.json, weights and (usually) spiece.model.
    model_dir: the model dir to create.
    dtype: the checkpoint's (and the gin's master) dtype.
    step: the checkpoint's global step (fine-tuning counts on from it).
    vocabulary: SentencePiece model to use instead of the folder's.
    overwrite: replace an existing model_dir.
    shard_bytes: checkpoint shard size.
  """
  mtf_output.check_options(dtype, step)
  model_dir_lib.check_target(model_dir, overwrite)
  folder = hf_folder.open_folder(hf_dir)
  model = hf_config.read(folder.config, folder.config_path)
  arch = model.arch
  vocabulary = vocabulary or folder.vocabulary
  if not vocabulary:
    raise ConversionError(
        "%s has no %s; pass the model's SentencePiece vocabulary with "
        "--vocabulary." % (hf_dir, hf_folder.SPIECE_FILE))
  vocabulary_lib.check(vocabulary, arch.vocab_size,
                       "%s (vocab_size)" % folder.config_path)
  _check_sparse_step_one(model, folder)
  mappings = hf_names.mappings(arch, model.family)
  aliases = hf_names.aliases(arch)
  tensor_plan.check(mappings, folder.tensors, aliases,
                    described_by=folder.config_path)
  tensor_plan.check_aliases(folder.tensors, aliases)

  return mtf_output.write(
      model_dir, overwrite, arch,
      tensor_plan.stream(mappings, folder.tensors, dtype), dtype, step,
      vocabulary, _header(hf_dir, model.family), model.routing_source, {
          "converted_by": "tools/convert_checkpoint.py hf-to-mtf",
          "source": os.path.abspath(hf_dir),
          "source_files": [{"path": os.path.abspath(p),
                            "bytes": os.path.getsize(p)}
                           for p in folder.weight_files],
          "family": model.family,
      }, shard_bytes)


def _check_sparse_step_one(model: hf_config.HfModel,
                           folder: hf_folder.HfFolder) -> None:
  """transformers < 4.37 builds no sparse layer for sparse step 1."""
  if 1 not in model.sparse_steps:
    return
  routers = [n for n in folder.tensors.names() if ".mlp.router." in n]
  if not routers:
    raise ConversionError(
        "%s: a sparse step of 1 means every FFN is sparse (transformers >= "
        "4.37), but the weights have no router: they were saved by "
        "transformers < 4.37, which builds no sparse layer for step 1. Set "
        "the step to 0 in config.json to import them as the dense model they "
        "are." % folder.config_path)


def _header(hf_dir: str, family: str):
  return ["Converted by tools/convert_checkpoint.py hf-to-mtf from the "
          "Hugging Face",
          "%s model in %s." % (family, os.path.abspath(hf_dir))]
