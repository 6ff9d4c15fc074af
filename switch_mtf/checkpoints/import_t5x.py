"""T5X checkpoint -> Mesh TF model dir (the switch_classic releases).

The model comes from the tensors (t5x_names.infer_architecture), the
routing from the release of that shape; the vocabulary must be given (T5X
checkpoint dirs do not hold it: the releases use T5's cc_all.32000.100extra
SentencePiece model). All checks run before the output dir is created.
"""

import dataclasses
import os
from typing import Optional

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import model_dir as model_dir_lib
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_output
from switch_mtf.checkpoints import t5x_checkpoint
from switch_mtf.checkpoints import t5x_names
from switch_mtf.checkpoints import tensor_plan
from switch_mtf.checkpoints import vocabulary as vocabulary_lib


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a T5X checkpoint converts to, before anything is written."""
  checkpoint: t5x_checkpoint.T5XCheckpoint
  arch: architecture.Architecture
  routing_source: str
  mappings: list


def plan(t5x_dir: str) -> Plan:
  """Reads the checkpoint's structure (no tensor data) and checks it."""
  checkpoint = t5x_checkpoint.T5XCheckpoint(t5x_dir)
  arch, routing_source = t5x_names.infer_architecture(checkpoint,
                                                      checkpoint.path)
  mappings = t5x_names.mappings(arch, checkpoint)
  tensor_plan.check(mappings, checkpoint,
                    described_by="the model its tensors describe")
  return Plan(checkpoint, arch, routing_source, mappings)


def import_t5x(t5x_dir: str, model_dir: str, vocabulary: str,
               dtype: str = "bfloat16", step: Optional[int] = None,
               overwrite: bool = False,
               shard_bytes: int = mtf_checkpoint.DEFAULT_SHARD_BYTES
               ) -> mtf_output.Result:
  """Converts a T5X checkpoint dir into a Mesh TF model dir.

  Args:
    t5x_dir: `checkpoint_<step>/` (or its `checkpoint` file).
    model_dir: the model dir to create.
    vocabulary: the model's SentencePiece model.
    dtype: the checkpoint's (and the gin's master) dtype.
    step: the global step to store (default: the T5X checkpoint's).
    overwrite: replace an existing model_dir.
    shard_bytes: checkpoint shard size.
  """
  model_dir_lib.check_target(model_dir, overwrite)
  converted = plan(t5x_dir)
  if step is None:
    step = converted.checkpoint.step or 0
  mtf_output.check_options(dtype, step)
  vocabulary_lib.check(vocabulary, converted.arch.vocab_size,
                       "%s (token_embedder/embedding)"
                       % converted.checkpoint.path)
  return mtf_output.write(
      model_dir, overwrite, converted.arch,
      tensor_plan.stream(converted.mappings, converted.checkpoint, dtype),
      dtype, step, vocabulary,
      ["Converted by tools/convert_checkpoint.py t5x-to-mtf from the T5X",
       "checkpoint %s (step %s)." % (
           os.path.abspath(converted.checkpoint.directory),
           converted.checkpoint.step)],
      converted.routing_source, {
          "converted_by": "tools/convert_checkpoint.py t5x-to-mtf",
          "source": os.path.abspath(converted.checkpoint.path),
          "t5x_version": converted.checkpoint.version,
          "t5x_step": converted.checkpoint.step,
      }, shard_bytes)
