"""Config grids: the cross product of a few axes, each point with a stable key.

A key names a config in result files, so a resumed run finds what is done.
Keys list every axis in a fixed order, so the same config always gets the
same key whatever order the grid was written in.
"""

import itertools
from typing import Any, Dict, Iterable, List, Mapping, Sequence


def expand(base: Mapping[str, Any],
           axes: Mapping[str, Sequence[Any]]) -> List[Dict[str, Any]]:
  """All configs `base` + one value per axis, in the axes' order.

  Raises:
    ValueError: if an axis is empty or also set in `base` (ambiguous).
  """
  for name, values in axes.items():
    if not values:
      raise ValueError("grid axis %r has no values; give at least one or "
                       "drop the axis." % (name,))
    if name in base:
      raise ValueError("grid axis %r is also fixed in the base config (%r); "
                       "set it in one place only." % (name, base[name]))
  names = list(axes)
  configs = []
  for values in itertools.product(*(axes[n] for n in names)):
    config = dict(base)
    config.update(zip(names, values))
    configs.append(config)
  return configs


def config_key(config: Mapping[str, Any]) -> str:
  """`a=1,b=x` over the sorted keys; floats in their shortest exact form."""
  return ",".join("%s=%s" % (name, _format(config[name]))
                  for name in sorted(config))


def unique(configs: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
  """Drops repeated configs (same key), keeping the first of each."""
  seen, kept = set(), []
  for config in configs:
    key = config_key(config)
    if key not in seen:
      seen.add(key)
      kept.append(dict(config))
  return kept


def _format(value: Any) -> str:
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, (list, tuple)):
    return "[%s]" % ";".join(_format(v) for v in value)
  return str(value)
