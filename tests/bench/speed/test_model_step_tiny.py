"""Every model of the experts-doubling entry builds and trains one step
(tests/bench/speed/model_contenders.py says why and how)."""

import pytest

from switch_mtf.bench import suite
from tests.bench.speed import model_contenders


def test_the_entry_holds_dense_every_expert_count_and_gather():
  names = set(model_contenders.tiny_names())
  assert names == {"t5_tiny", "switch_tiny_E8_gather"} | {
      "switch_tiny_E%d" % e for e in suite.MODEL_EXPERTS}


@pytest.mark.parametrize("name", model_contenders.tiny_names())
def test_contender_builds_and_steps(name):
  model_contenders.build_and_step(name)
