"""Casts and transposes of large tensors, done the fast way, bit for bit.

Conversions spend their CPU time here (issue 15: bound by the disk, not by
Python). Three things make it fast without changing a single bit:
- casts run on contiguous rows: ml_dtypes' float32 -> bfloat16 cast is
  several times faster on contiguous data than on a transposed view, and
  rounds each element the same way either way;
- transposes go a block of rows at a time through a buffer whose rows are
  padded (rows of a power-of-two-ish width otherwise share cache sets: a
  [768, 3072] transpose ran 4x slower than a [3072, 768] one), and copy
  the block as unsigned integers of the element's width, so NumPy uses its
  built-in loops and releases the GIL (bfloat16 is a user dtype whose
  loops hold it);
- outputs start at 64-byte boundaries, so TensorFlow takes them as tensors
  without copying them (it copies arrays less aligned than Eigen needs).
"""

from typing import Sequence

import numpy as np

ALIGNMENT = 64  # bytes; TensorFlow's allocator alignment (Eigen's maximum)
_BLOCK_ROWS = 64  # rows per transposed block
_PAD = 32  # elements added to each row of the block's buffer
_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def aligned_empty(shape: Sequence[int], dtype) -> np.ndarray:
  """An uninitialised array whose data starts at an ALIGNMENT boundary."""
  dtype = np.dtype(dtype)
  nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  buffer = np.empty(nbytes + ALIGNMENT, np.uint8)
  start = -buffer.ctypes.data % ALIGNMENT
  return buffer[start:start + nbytes].view(dtype).reshape(shape)


def copy_into(source: np.ndarray, out: np.ndarray) -> None:
  """out[...] = source cast to out's dtype (same shape)."""
  np.copyto(out, source, casting="unsafe")


def transpose_into(source: np.ndarray, out: np.ndarray) -> None:
  """out[...] = source.T cast to out's dtype, for 2-D arrays.

  A block of rows is cast into the padded buffer row by row (contiguous),
  then copied from it transposed, as bits.
  """
  if source.ndim != 2 or out.shape != source.shape[::-1]:
    raise ValueError("transpose_into: shapes %s -> %s are not a 2-D "
                     "transpose" % (source.shape, out.shape))
  rows, columns = source.shape
  bits = _BITS[out.dtype.itemsize]
  out_bits = out.view(bits)
  buffer = np.empty((min(rows, _BLOCK_ROWS), columns + _PAD), out.dtype)
  buffer_bits = buffer.view(bits)[:, :columns]
  for start in range(0, rows, _BLOCK_ROWS):
    count = min(_BLOCK_ROWS, rows - start)
    copy_into(source[start:start + count], buffer[:count, :columns])
    out_bits[:, start:start + count] = buffer_bits[:count].T


def transposed(source: np.ndarray) -> np.ndarray:
  """source.T as a new aligned, contiguous array of the same dtype."""
  out = aligned_empty(source.shape[::-1], source.dtype)
  transpose_into(source, out)
  return out
