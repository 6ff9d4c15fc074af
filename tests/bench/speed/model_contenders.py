"""The whole-model speed contenders, for the build-and-step tests.

The models part of `make bench` (suite.model_spec_groups: the experts
doubling, the headline protocol's models, the precision table) builds these
exact gin files and bindings; one that cannot be built must fail in the
fast suite, not an hour into a benchmark. The check builds each at a
smaller batch and lengths than the timed ones (a build-and-step check, not
a timing) and runs one step. Building dominates (Mesh TF's lowering, 5-10 s
a model), so the contenders are split over two test modules, which
tools/run_tests.py runs side by side.
"""

import dataclasses
import math
from typing import Dict

from switch_mtf.bench import suite
from switch_mtf.bench.speed import model_step

SMALL = dict(batch=4, inputs_length=32, targets_length=32)


def every_spec() -> Dict[str, model_step.ModelSpec]:
  """Every spec the models part times (quick and full), once each."""
  specs = {}
  for quick in (False, True):
    for group in suite.model_spec_groups(quick).values():
      for spec in group.values():
        assert specs.setdefault(spec.name, spec) == spec, spec.name
  return specs


def tiny_names():
  """The experts-doubling entry's models (the quick one's are among them)."""
  full, quick = (next(iter(suite.model_spec_groups(q).values()))
                 for q in (False, True))
  assert set(quick) <= set(full)
  return sorted(full)


def other_names():
  return sorted(set(every_spec()) - set(tiny_names()))


def build_and_step(name: str) -> None:
  spec = dataclasses.replace(every_spec()[name], **SMALL)
  built = model_step.BuiltModel(spec, threads=1)
  try:
    loss = built.step()
  finally:
    built.close()
  assert math.isfinite(loss), name
  assert built.params > 0
  assert (built.expert_params > 0) == ("switch" in spec.gin_files[0]), name
