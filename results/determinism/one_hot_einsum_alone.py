"""Probe: is a one-hot embedding-gradient einsum alone run-to-run stable?

The embedding gradient of the claims recipe's batch (32 x 128 tokens, vocab
8192, d_model 128) beside four concurrent matmuls, 30 times in one session:
  python one_hot_einsum_alone.py INTER_OP_THREADS INTRA_OP_THREADS
prints how many of runs 2-30 differ from the first.
"""

import sys

import numpy as np
import tensorflow.compat.v1 as tf


def main(inter: int, intra: int) -> None:
  tf.disable_eager_execution()
  rng = np.random.RandomState(0)
  ids = tf.constant(rng.randint(0, 8192, size=(32, 128)).astype(np.int32))
  dy = tf.constant(rng.randn(32, 128, 128).astype(np.float32))
  grad = tf.einsum("btv,btd->vd", tf.one_hot(ids, 8192), dy)
  square_sum = tf.reduce_sum(tf.square(grad), 0)
  x = tf.constant(rng.randn(512, 512).astype(np.float32))
  others = [tf.reduce_sum(tf.matmul(x + i, x)) for i in range(4)]
  config = tf.ConfigProto(inter_op_parallelism_threads=inter,
                          intra_op_parallelism_threads=intra)
  with tf.Session(config=config) as session:
    first, differ = None, 0
    for _ in range(30):
      out = session.run([grad, square_sum] + others)
      if first is None:
        first = out
      elif not all(np.array_equal(a, b) for a, b in zip(out[:2], first[:2])):
        differ += 1
  print("inter", inter, "intra", intra, "runs differing from the first:",
        differ, "of 29")


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]))
