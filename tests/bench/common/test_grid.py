"""Config grids: cross products, keys, de-duplication.

No timings: bookkeeping checked against hand-computed values.
"""

import pytest

from switch_mtf.bench.common import grid


def test_expand_is_the_cross_product_in_axis_order():
  configs = grid.expand({"d": 256}, {"e": [8, 32], "cf": [1.0, 1.25]})
  assert configs == [
      {"d": 256, "e": 8, "cf": 1.0}, {"d": 256, "e": 8, "cf": 1.25},
      {"d": 256, "e": 32, "cf": 1.0}, {"d": 256, "e": 32, "cf": 1.25}]


@pytest.mark.parametrize("base,axes", [({}, {"e": []}),
                                       ({"e": 8}, {"e": [16]})])
def test_expand_rejects_empty_or_ambiguous_axes(base, axes):
  with pytest.raises(ValueError, match="axis 'e'"):
    grid.expand(base, axes)


def test_config_key_ignores_order_and_unique_drops_repeats():
  a = {"cf": 1.0, "e": 8}
  b = {"e": 8, "cf": 1.0}
  assert grid.config_key(a) == grid.config_key(b) == "cf=1.0,e=8"
  assert grid.config_key({"cf": 1.25}) != grid.config_key({"cf": 1.0})
  assert grid.unique([a, b, {"e": 16}]) == [a, {"e": 16}]
