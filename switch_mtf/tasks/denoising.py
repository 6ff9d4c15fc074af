"""The pretraining objectives, shared by the C4 and embedded Wikipedia tasks.

Both read documents as `{"text": ...}` and differ only in their source, so the
embedded task trains on exactly the C4 recipe (Raffel et al. 2019, used
unchanged by the Switch paper): span corruption with 15% noise in spans of
mean length 3, each span replaced by one sentinel.
"""

import functools
from typing import Callable, List

import seqio
import t5.data.preprocessors

NOISE_DENSITY = 0.15
MEAN_NOISE_SPAN_LENGTH = 3.0
# The paper's pretraining lengths: 512 input tokens give 114 target tokens
# at the density and span length above (t5 `random_spans_helper`).
SEQUENCE_LENGTH = {"inputs": 512, "targets": 114}

_TEXT_AS_TARGETS = functools.partial(
    t5.data.preprocessors.rekey, key_map={"inputs": None, "targets": "text"})


def span_corruption_preprocessors() -> List[Callable]:
  """T5's span-corruption pipeline (as in its `c4_v220_span_corruption`)."""
  return [
      _TEXT_AS_TARGETS,
      seqio.preprocessors.tokenize,
      seqio.CacheDatasetPlaceholder(),
      functools.partial(
          t5.data.preprocessors.span_corruption,
          noise_density=NOISE_DENSITY,
          mean_noise_span_length=MEAN_NOISE_SPAN_LENGTH),
      seqio.preprocessors.append_eos_after_trim,
  ]


def prefix_lm_preprocessors() -> List[Callable]:
  """T5's prefix-LM pipeline (as in its `c4_v220_prefix_lm`)."""
  return [
      _TEXT_AS_TARGETS,
      seqio.preprocessors.tokenize,
      seqio.CacheDatasetPlaceholder(),
      t5.data.preprocessors.prefix_lm,
      seqio.preprocessors.append_eos_after_trim,
  ]
