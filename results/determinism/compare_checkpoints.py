"""Which variables of two runs' checkpoints differ, step by step.

  python compare_checkpoints.py /tmp/det/m /tmp/det/n 10
prints, for steps 0..10, how many variables differ and the first six with
(differing elements, size, largest absolute difference).
"""
import sys

import numpy as np
import tensorflow as tf


def main(left: str, right: str, last_step: int) -> None:
  for step in range(last_step + 1):
    a = tf.train.load_checkpoint("%s/model.ckpt-%d" % (left, step))
    b = tf.train.load_checkpoint("%s/model.ckpt-%d" % (right, step))
    differ = []
    for name in sorted(a.get_variable_to_shape_map()):
      x, y = a.get_tensor(name), b.get_tensor(name)
      if not np.array_equal(x, y):
        gap = np.abs(x.astype(np.float64) - y)
        differ.append((name, int((gap > 0).sum()), x.size, float(gap.max())))
    print(step, len(differ), differ[:6])


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
