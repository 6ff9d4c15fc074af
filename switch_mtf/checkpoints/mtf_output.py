"""Writing a Mesh TF model dir: checkpoint, model.gin, vocabulary, record.

Shared by every conversion into Mesh TF (from Hugging Face, from T5X, sparse
upcycling): the dir is staged and renamed into place when complete
(model_dir.py), the checkpoint streams from the given tensors, and the gin
names the vocabulary by its final path.
"""

import dataclasses
import os
from typing import Any, Dict, Iterable, Sequence, Tuple

import numpy as np

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import gin_emitter
from switch_mtf.checkpoints import model_dir as model_dir_lib
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import vocabulary as vocabulary_lib
from switch_mtf.checkpoints.errors import ConversionError

DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class Result:
  model_dir: str
  gin_file: str
  checkpoint_prefix: str
  bytes_written: int


def check_options(dtype: str, step: int) -> None:
  if dtype not in DTYPES:
    raise ConversionError("dtype %r: use %s." % (dtype, " or ".join(DTYPES)))
  if step < 0:
    raise ConversionError("step %d must be >= 0." % step)


def write(model_dir: str, overwrite: bool, arch: architecture.Architecture,
          tensors: Iterable[Tuple[str, np.ndarray]], dtype: str, step: int,
          vocabulary: str, header: Sequence[str], routing_source: str,
          record: Dict[str, Any], shard_bytes: int) -> Result:
  """Writes the model dir; `tensors` is consumed inside the staging dir."""
  final_dir = os.path.abspath(model_dir)
  gin_file = os.path.join(final_dir, gin_emitter.MODEL_GIN)
  header = list(header) + [
      "Use: --gin_file=%s" % gin_file,
      "     --gin_param=\"utils.run.init_checkpoint='%s'\"" % os.path.join(
          final_dir, "model.ckpt-%d" % step),
      "     and a new --model_dir to fine-tune; --model_dir=%s to evaluate,"
      % final_dir,
      "     score or decode it."]
  with model_dir_lib.staged(model_dir, overwrite) as staging:
    prefix = mtf_checkpoint.write(staging, step, tensors, shard_bytes)
    vocabulary_lib.copy(vocabulary, staging)
    with open(os.path.join(staging, gin_emitter.MODEL_GIN), "w") as f:
      f.write(gin_emitter.model_gin(
          arch, dtype, os.path.join(final_dir, vocabulary_lib.FILE_NAME),
          header, routing_source))
    model_dir_lib.write_record(staging, dict(
        record, dtype=dtype, step=step,
        architecture=dataclasses.asdict(arch),
        routing_source=routing_source))
    written = sum(os.path.getsize(os.path.join(staging, name))
                  for name in os.listdir(staging))
  return Result(final_dir, gin_file,
                os.path.join(final_dir, os.path.basename(prefix)), written)
