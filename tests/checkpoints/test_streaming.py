"""Conversions stream in bounded memory, fast, and change no bit (issue 15).

The fast casts and blocked transposes (array_layout.py) must equal NumPy's
plain `x.T.astype(dtype)` bit for bit, special values included; the
producer thread (read_ahead.py) must stay within its byte budget, keep
order, pass its errors on and stop when the consumer does; tensor_plan's
stream must hold one source tensor at a time (counted by a fake source
whose arrays report their release) and hand TensorFlow aligned arrays; the
checkpoint writer must hold at most two shards and an item.
"""

import threading
import weakref

import ml_dtypes
import numpy as np
import pytest

from switch_mtf.checkpoints import array_layout
from switch_mtf.checkpoints import mtf_checkpoint
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import read_ahead
from switch_mtf.checkpoints import tensor_plan
from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints.errors import ConversionError

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
# float32 bit patterns where casts go wrong: NaNs with payloads (one that
# a plain round-up would carry into the sign), infinities, zeros,
# subnormals, round-to-even ties either way, the largest finite float
# (rounds to inf in bfloat16) and its neighbours.
SPECIAL_BITS = np.array(
    [0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FFFFFFF, 0x7F800000, 0xFF800000,
     0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00008000, 0x3F808000,
     0x3F818000, 0x3F80FFFF, 0x7F7FFFFF, 0x7F7F7FFF, 0xFF7F8000, 0x3F800001],
    np.uint32)


def _with_specials(shape, seed=0):
  values = np.random.default_rng(seed).standard_normal(shape).astype(
      np.float32)
  flat = values.reshape(-1)
  flat[:len(SPECIAL_BITS)] = SPECIAL_BITS.view(np.float32)
  flat[-len(SPECIAL_BITS):] = SPECIAL_BITS.view(np.float32)
  return values


def _bits(array):
  return array.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[
      array.dtype.itemsize])


@pytest.mark.parametrize("shape", [(150, 70), (3, 200), (64, 64), (1, 18)])
@pytest.mark.parametrize("source_dtype,dtype", [
    (np.float32, BFLOAT16), (np.float32, np.float32),
    (np.float64, BFLOAT16), (np.float16, np.float32),
    (BFLOAT16, BFLOAT16)])
def test_transpose_into_equals_numpy_bit_for_bit(shape, source_dtype, dtype):
  source = _with_specials(shape).astype(source_dtype)
  out = array_layout.aligned_empty(shape[::-1], dtype)
  array_layout.transpose_into(source, out)
  np.testing.assert_array_equal(_bits(out), _bits(source.T.astype(dtype)))
  # A strided source (as torch_zip reads a transposed view) too.
  view = source.T
  out_t = array_layout.aligned_empty(shape, dtype)
  array_layout.transpose_into(view, out_t)
  np.testing.assert_array_equal(_bits(out_t), _bits(source.astype(dtype)))


def test_aligned_empty_starts_on_tensorflows_alignment():
  for size in (1, 7, 1000, 123457):
    array = array_layout.aligned_empty((size,), BFLOAT16)
    assert array.ctypes.data % array_layout.ALIGNMENT == 0
    assert array.shape == (size,) and array.dtype == BFLOAT16
    assert array.flags.c_contiguous and array.flags.writeable


class CountingSource(tensor_source.ListedSource):
  """Float32 tensors with special values; counts the arrays alive."""

  def __init__(self, shapes):
    self._listed = {name: (shape, "float32") for name, shape in
                    shapes.items()}
    self.values = {name: _with_specials(shape, seed)
                   for seed, (name, shape) in enumerate(shapes.items())}
    self.alive = 0
    self.max_alive = 0

  def read(self, name):
    array = self.values[name].copy()
    self.alive += 1
    self.max_alive = max(self.max_alive, self.alive)
    weakref.finalize(array, self._released)
    return array

  def _released(self):
    self.alive -= 1

  def location(self, name):
    return "counting"


def _mapping(name, op, sources, shape, reshaped_from=None):
  return tensor_plan.Mapping(mtf_names.Param(name, shape, "test"), sources,
                             op, reshaped_from)


MAPPINGS = [
    _mapping("stacked", tensor_plan.STACK_TRANSPOSED,
             tuple("expert_%d" % e for e in range(5)), (5, 70, 130)),
    _mapping("transposed", tensor_plan.TRANSPOSE, ("t",), (90, 33)),
    _mapping("copied", tensor_plan.COPY, ("c",), (129, 20)),
    _mapping("reshaped", tensor_plan.RESHAPE, ("r",), (12, 4, 6), (12, 24)),
]


def _expected(mapping, values, dtype):
  if mapping.op == tensor_plan.STACK_TRANSPOSED:
    return np.stack([values[n].T for n in mapping.sources]).astype(dtype)
  if mapping.op == tensor_plan.TRANSPOSE:
    return values[mapping.sources[0]].T.astype(dtype)
  return values[mapping.sources[0]].reshape(mapping.param.shape).astype(
      dtype)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_stream_holds_one_source_at_a_time_and_changes_no_bit(dtype):
  source = CountingSource({name: tensor_plan.source_shape(m)
                           for m in MAPPINGS for name in m.sources})
  numpy_dtype = tensor_source.NUMPY_DTYPES[dtype]
  names = []
  for (name, array), mapping in zip(
      tensor_plan.stream(MAPPINGS, source, dtype), MAPPINGS):
    names.append(name)
    assert array.dtype == numpy_dtype and array.flags.c_contiguous
    # TensorFlow takes arrays this aligned without copying them.
    assert array.ctypes.data % array_layout.ALIGNMENT == 0
    np.testing.assert_array_equal(
        _bits(array), _bits(_expected(mapping, source.values, numpy_dtype)))
  assert names == [m.param.mtf_name for m in MAPPINGS]
  # The five experts of `stacked` were read and released one by one.
  assert source.max_alive == 1 and source.alive == 0


def test_split_inverts_combine():
  source = CountingSource({name: tensor_plan.source_shape(m)
                           for m in MAPPINGS for name in m.sources})
  for name, array in tensor_plan.stream(MAPPINGS, source, "float32"):
    mapping = tensor_plan.by_mtf_name(MAPPINGS)[name]
    pieces = list(tensor_plan.split(mapping, array))
    assert len(pieces) == len(mapping.sources)
    for piece, source_name in zip(pieces, mapping.sources):
      np.testing.assert_array_equal(_bits(piece),
                                    _bits(source.values[source_name]))


class CountingItems:
  """An iterator of `count` arrays of `size` bytes; counts what it made."""

  def __init__(self, count, size, fail_at=None):
    self.count, self.size, self.fail_at = count, size, fail_at
    self.produced = 0
    self.alive = 0
    self.max_alive = 0
    self.closed = False
    self.beyond = threading.Event()  # set when more than `limit` are made
    self.limit = count

  def __iter__(self):
    try:
      for i in range(self.count):
        if i == self.fail_at:
          raise ConversionError("item %d is broken" % i)
        array = np.full(self.size, i % 256, np.uint8)
        self.produced += 1
        self.alive += 1
        self.max_alive = max(self.max_alive, self.alive)
        weakref.finalize(array, self._released)
        if self.produced > self.limit:
          self.beyond.set()
        yield array
        del array
    finally:
      self.closed = True

  def _released(self):
    self.alive -= 1


def test_read_ahead_yields_everything_in_order():
  items = CountingItems(20, 10)
  got = [int(a[0]) for a in read_ahead.ahead(iter(items), 35, len)]
  assert got == list(range(20)) and items.closed


def test_read_ahead_stays_within_its_byte_budget():
  # Budget 3 items: with one item taken (and held), the producer may fill
  # the queue with 3 more and must then wait; 5 produced breaks the bound.
  items = CountingItems(20, 10)
  items.limit = 4
  produced = read_ahead.ahead(iter(items), 30, len)
  first = next(produced)
  assert not items.beyond.wait(timeout=2.0), (
      "the producer ran %d items ahead of a consumer holding one"
      % items.produced)
  assert int(first[0]) == 0
  del first
  assert [int(a[0]) for a in produced] == list(range(1, 20))


def test_read_ahead_produces_an_item_over_budget_alone():
  items = CountingItems(6, 100)
  items.limit = 2  # the one held and the one queued
  produced = read_ahead.ahead(iter(items), 30, len)
  first = next(produced)
  assert not items.beyond.wait(timeout=2.0)
  del first
  assert len(list(produced)) == 5


def test_read_ahead_passes_the_producers_error_on_in_order():
  items = CountingItems(10, 10, fail_at=3)
  got = []
  with pytest.raises(ConversionError, match="item 3 is broken"):
    for array in read_ahead.ahead(iter(items), 100, len):
      got.append(int(array[0]))
  assert got == [0, 1, 2]


def test_closing_read_ahead_stops_and_closes_the_producer():
  items = CountingItems(1000, 10)
  produced = read_ahead.ahead(iter(items), 30, len)
  next(produced)
  produced.close()  # returns once the producer thread has ended
  assert items.closed and items.produced <= 4
  assert not any(t.name == "read_ahead" and t.is_alive()
                 for t in threading.enumerate())


def test_checkpoint_writer_holds_at_most_two_shards(tmp_path):
  # 30 arrays of 1 KiB into 4 KiB shards: the full shard being written (4)
  # and the next one read ahead (4, the one being made included); a writer
  # that held a shard until the next array arrived would hold 9.
  items = CountingItems(30, 1024)
  prefix = mtf_checkpoint.write(
      str(tmp_path), 7, (("v%02d" % i, a) for i, a in enumerate(items)),
      shard_bytes=4096)
  assert items.max_alive <= 8 and items.alive == 0
  checkpoint = mtf_checkpoint.MtfCheckpoint(prefix)
  assert checkpoint.names() == ["v%02d" % i for i in range(30)]
  for i in range(30):
    np.testing.assert_array_equal(checkpoint.read("v%02d" % i),
                                  np.full(1024, i % 256, np.uint8))
