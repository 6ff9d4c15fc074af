"""Every model of the headline and precision entries builds and trains one
step (tests/bench/speed/model_contenders.py says why and how)."""

import pytest

from switch_mtf.bench.claims import headline
from switch_mtf.bench.speed import model_step
from tests.bench.speed import model_contenders


def test_the_contenders_are_every_model_the_models_part_times():
  names = set(model_contenders.every_spec())
  assert set(model_step.precision_specs()) <= names
  assert set(headline.speed_specs()) <= names
  assert set(model_contenders.other_names()) == names - set(
      model_contenders.tiny_names())


@pytest.mark.parametrize("name", model_contenders.other_names())
def test_contender_builds_and_steps(name):
  model_contenders.build_and_step(name)
