"""The headline experiment (issue 18): sample efficiency, trained longer.

The paper's central claim is that Switch reaches a FLOP-matched dense
model's quality in a fraction of the steps, more so with more experts. The
claims suite's 1500-step curves end in the models' steep initial descent;
this experiment trains the same tiny models on the large Wikipedia corpus
(wiki_large_span_corruption, 5.4x the embedded text) long enough for the
dense model to flatten, with a fixed validation set evaluated at every
checkpoint. Pilots (seed 0 of dense and Switch E32 under each candidate
protocol) choose the protocol; the chosen protocol's seed-0 runs are the
pilot runs themselves, stored with the same provenance.
"""

import dataclasses
from typing import Dict, List

from switch_mtf.bench.claims.runs import Run
from switch_mtf.bench.common import tiny_models

MIXTURE = "wiki_large_span_corruption"
RECIPE_GIN = "bench/headline_recipe.gin"
RSQRT_RECIPE_GIN = "bench/headline_rsqrt_recipe.gin"
# Validation: 50 batches x 32 sequences (1,600 of the corpus's fixed
# validation examples, ~51k target tokens).
EVAL_STEPS = 50
RECIPES = {"const": RECIPE_GIN, "rsqrt": RSQRT_RECIPE_GIN}
# The code a run's result depends on: the model, training and CLI code, and
# of the tasks only this task's modules (new tasks elsewhere in the package
# leave these long runs fresh).
CODE = ("layer", "cli", "training") + tuple(
    "tasks/%s.py" % module for module in (
        "wiki_large", "wiki", "wiki_corpus", "denoising", "vocab",
        "registry", "paths"))


@dataclasses.dataclass(frozen=True)
class Protocol:
  steps: int
  checkpoint_every: int
  recipe: str  # a key of RECIPES


# The candidate protocols; their seed-0 dense and Switch E32 runs are the
# pilots, and the chosen protocol's seed-0 runs are those same runs.
CANDIDATES = (Protocol(steps=3000, checkpoint_every=500, recipe="const"),
              Protocol(steps=3000, checkpoint_every=500, recipe="rsqrt"))
PILOT_EXPERTS = 32


def dense(protocol: Protocol, seed: int) -> Run:
  return _run(protocol, "dense", seed, tiny_models.DENSE_GIN, ())


def switch(protocol: Protocol, seed: int, experts: int) -> Run:
  return _run(protocol, "switch_E%d" % experts, seed, tiny_models.SWITCH_GIN,
              ("num_experts = %d" % experts, tiny_models.CPU_DISPATCH))


def _run(protocol: Protocol, name: str, seed: int, model_gin: str,
         params) -> Run:
  return Run(name="%s_%s_%dsteps_s%d" % (name, protocol.recipe,
                                         protocol.steps, seed),
             model_gin=model_gin, gin_params=tuple(params), seed=seed,
             train_steps=protocol.steps, recipe_gin=RECIPES[protocol.recipe],
             mixture=MIXTURE, checkpoint_every=protocol.checkpoint_every)


def pilots() -> List[Run]:
  """Seed 0 of dense and Switch E32 under each candidate protocol."""
  out = []
  for protocol in CANDIDATES:
    out += [dense(protocol, 0), switch(protocol, 0, PILOT_EXPERTS)]
  return out


def describe(protocol: Protocol) -> str:
  return "%d steps, %s learning rate (%s)" % (
      protocol.steps, "constant" if protocol.recipe == "const" else "rsqrt",
      RECIPES[protocol.recipe])


def plan() -> Dict[str, List[Run]]:
  """Each protocol's description -> its runs (dense first), in run order."""
  return {describe(p): [dense(p, 0), switch(p, 0, PILOT_EXPERTS)]
          for p in CANDIDATES}


def dense_config(runs: List[Run]) -> str:
  """The config name (run name without its seed) of a group's dense runs."""
  return next(r.name for r in runs if r.model_gin == tiny_models.DENSE_GIN
              ).rsplit("_s", 1)[0]
