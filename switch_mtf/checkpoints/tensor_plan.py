"""Which source tensors make each Mesh TF variable, checked before any work.

A `Mapping` ties one Param to the source tensors it is made from and how:
copied, reshaped (attention kernels with heads split out), transposed (2-D
kernels stored [out, in]), or one tensor per expert transposed and stacked
on the experts dimension. `check` compares the
mappings with a source's names and shapes (headers only) and raises a
one-line ConversionError naming the first missing, mis-shaped, extra or
non-float tensor; `stream` then yields each variable's values, one at a
time, in the dtype asked for. `split` is the inverse direction (export):
the source tensors of one Mesh TF variable.
"""

import dataclasses
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from switch_mtf.checkpoints import array_layout
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import tensor_source
from switch_mtf.checkpoints.errors import ConversionError

COPY = "copy"
TRANSPOSE = "transpose"
STACK_TRANSPOSED = "stack_transposed"  # one [out, in] tensor per expert
RESHAPE = "reshape"  # same values, row-major, another shape (split heads)
_MAX_LISTED = 3


@dataclasses.dataclass(frozen=True)
class Mapping:
  param: mtf_names.Param
  sources: Tuple[str, ...]
  op: str
  reshaped_from: Optional[Tuple[int, ...]] = None  # the source's, RESHAPE


def source_shape(mapping: Mapping) -> Tuple[int, ...]:
  """The shape each of the mapping's source tensors must have."""
  shape = mapping.param.shape
  if mapping.op == COPY:
    return shape
  if mapping.op == TRANSPOSE:
    return tuple(reversed(shape))
  if mapping.op == RESHAPE:
    return mapping.reshaped_from
  return tuple(reversed(shape[1:]))  # one expert, transposed


def combine(mapping: Mapping, read: Callable[[str], np.ndarray],
            dtype: str) -> np.ndarray:
  """The Mesh TF variable from its sources, cast to `dtype`.

  `read(name)` gives one source tensor; each is dropped once copied into
  the output (an aligned new array), so one source at a time is in memory.
  """
  out = array_layout.aligned_empty(mapping.param.shape,
                                   tensor_source.NUMPY_DTYPES[dtype])
  if mapping.op == STACK_TRANSPOSED:
    for expert, name in enumerate(mapping.sources):
      array_layout.transpose_into(np.asarray(read(name)), out[expert])
  elif mapping.op == TRANSPOSE:
    array_layout.transpose_into(np.asarray(read(mapping.sources[0])), out)
  else:  # COPY, RESHAPE: the same values in row-major order
    array_layout.copy_into(
        np.asarray(read(mapping.sources[0])).reshape(out.shape), out)
  return out


def split(mapping: Mapping, array: np.ndarray) -> Iterator[np.ndarray]:
  """The source arrays of a Mesh TF variable (inverse of `combine`), made
  one at a time."""
  if mapping.op == COPY:
    yield array
  elif mapping.op == TRANSPOSE:
    yield array_layout.transposed(array)
  elif mapping.op == RESHAPE:
    yield array.reshape(mapping.reshaped_from)
  else:
    for expert in array:
      yield array_layout.transposed(expert)


def check(mappings: Sequence[Mapping], source: tensor_source.TensorSource,
          aliases: Optional[Dict[str, str]] = None,
          described_by: str = "") -> None:
  """Raises ConversionError unless `source` holds exactly what is mapped.

  Args:
    mappings: every variable's sources.
    source: the checkpoint being read.
    aliases: extra source names allowed as copies of a mapped source (tied
      weights a format stores twice), name -> mapped name; each must have
      the same shape (equal values are checked by `check_aliases`).
    described_by: what defines the expected tensors (e.g. a config file),
      named in the errors about missing, extra and mis-shaped tensors.
  """
  aliases = aliases or {}
  present = set(source.names())
  by = (" (as %s describes it)" % described_by) if described_by else ""
  wanted = {}
  for mapping in mappings:
    shape = source_shape(mapping)
    for name in mapping.sources:
      wanted[name] = shape
  missing = [name for name in wanted if name not in present]
  if missing:
    raise ConversionError(
        "%s lacks tensor %s that the model%s needs%s." % (
            _where(source, present), missing[0], by, _more(missing)))
  extra = sorted(present - set(wanted) - set(aliases))
  if extra:
    raise ConversionError(
        "%s has tensor %s that the model%s does not use%s; a different "
        "architecture or a config that contradicts the tensors." % (
            source.location(extra[0]), extra[0], by, _more(extra)))
  for name, shape in list(wanted.items()) + [
      (alias, wanted[target]) for alias, target in aliases.items()
      if alias in present]:
    if tuple(source.shape(name)) != tuple(shape):
      raise ConversionError(
          "%s: tensor %s has shape %s, the model%s needs %s." % (
              source.location(name), name, list(source.shape(name)), by,
              list(shape)))
    if source.dtype(name) not in tensor_source.FLOAT_DTYPES:
      raise ConversionError("%s: tensor %s has dtype %s; weights must be "
                            "floating point." % (source.location(name), name,
                                                 source.dtype(name)))


def check_checkpoint(params: Sequence[mtf_names.Param],
                     source: tensor_source.TensorSource,
                     described_by: str) -> None:
  """A Mesh TF checkpoint must hold exactly `params`, as named and shaped."""
  check([Mapping(p, (p.mtf_name,), COPY) for p in params], source,
        described_by=described_by)


def check_aliases(source: tensor_source.TensorSource,
                  aliases: Dict[str, str]) -> None:
  """Tied copies must equal the tensor they copy (one Mesh TF variable)."""
  for alias, target in aliases.items():
    if alias in source.names() and not np.array_equal(
        np.asarray(source.read(alias)), np.asarray(source.read(target))):
      raise ConversionError(
          "%s: tensor %s differs from %s, but the model ties them (Mesh TF "
          "keeps one); untie them in the config or fix the checkpoint."
          % (source.location(alias), alias, target))


def stream(mappings: Sequence[Mapping], source: tensor_source.TensorSource,
           dtype: str) -> Iterator[Tuple[str, np.ndarray]]:
  """(Mesh TF name, values in `dtype`) for each mapping, one at a time."""
  for mapping in mappings:
    yield mapping.param.mtf_name, combine(mapping, source.read, dtype)


def by_mtf_name(mappings: Sequence[Mapping]) -> Dict[str, Mapping]:
  return {m.param.mtf_name: m for m in mappings}


def _where(source: tensor_source.TensorSource, present) -> str:
  files = sorted({source.location(name) for name in present})
  if not files:
    return "the checkpoint (no tensors)"
  return files[0] if len(files) == 1 else "the checkpoint (%d files)" % len(
      files)


def _more(names: Sequence[str]) -> str:
  if len(names) <= 1:
    return ""
  shown = ", ".join(names[1:_MAX_LISTED])
  rest = len(names) - _MAX_LISTED
  return " (also %s%s)" % (shown, " and %d more" % rest if rest > 0 else "")
