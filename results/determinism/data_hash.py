"""Prints running sha256 digests of the demo's first 3 training batches.

Equal output in several processes means the data order is reproducible.
  .venv/bin/python results/determinism/data_hash.py
"""
import hashlib

import tensorflow.compat.v1 as tf
from t5.models import mesh_transformer

import switch_mtf.tasks  # pylint: disable=unused-import  (registers tasks)

if __name__ == "__main__":
  tf.enable_eager_execution()
  dataset = mesh_transformer.mesh_train_dataset_fn(
      "wiki_span_corruption", {"inputs": 128, "targets": 32}, seed=1234)
  digest = hashlib.sha256()
  for step, batch in enumerate(dataset.batch(32).take(3)):
    for key in sorted(batch):
      digest.update(key.encode())
      digest.update(batch[key].numpy().tobytes())
    print(step, digest.hexdigest()[:16])
