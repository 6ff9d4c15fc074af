"""The headline experiment (issue 18): sample efficiency, trained longer.

The paper's central claim is that Switch reaches a FLOP-matched dense
model's quality in a fraction of the steps, more so with more experts. The
claims suite's 1500-step curves end in the models' steep initial descent;
this experiment trains on the large Wikipedia corpus
(wiki_large_span_corruption, 5.4x the embedded text) until the dense model
levels off, with a fixed validation set evaluated every 500 steps, for
dense and 8, 32 and 128 experts, three seeds each paired by data order.

The protocol and why (the pilots are in results/headline/):
- Model: the issue asks for a dense model that becomes capacity-limited
  within the budget. The first pilot, t5_tiny (d_model 128) for 3000
  steps (pilots.json), still fell 0.126 in validation CE over its last
  1000 steps. t5_mini / switch_mini (d_model 64, d_ff 256, models/*.gin)
  have a quarter of the FFN and attention weights; a design probe of
  whole training steps (not a published timing) put t5_mini at 0.61x
  t5_tiny's step and switch_mini E128 at 0.69x (t5_tiny E128: 1.62x), so
  the grid affords twice the steps of t5_tiny's.
- 6000 steps, checkpoints every 500: 12 runs x 6000 steps of the mini
  models take about as long as 12 x 3000 of the tiny ones (within the
  issue's 10 hours at the idle step times); each run under an hour.
- Decided before the mini pilots' curves were seen (commit of this text):
  the protocol stands if the dense pilot (dense_mini_const_6000steps_s0)
  falls by less than 0.05 in validation CE over its last 2000 steps
  (levelled off) and the E32 pilot ends below it; otherwise the pilots
  move to pilots.json and the report says which condition failed. The
  pilots are the protocol's seed-0 runs, so a kept protocol reuses them.
- A constant learning rate of 0.01: T5's rsqrt(max(step, 10000)) is that
  constant for the first 10,000 steps, so at 6000 steps the two are the
  same schedule; the claims' recipe search found compressed inverse square
  root schedules learning more slowly (bench/rsqrt_recipe.gin). No final
  decay, so that "the step at which Switch reaches dense's final loss"
  compares points of curves under the same learning rate.
"""
import dataclasses
from typing import Dict, List, Optional

from switch_mtf.bench.claims.runs import Run
from switch_mtf.bench.common import tiny_models
from switch_mtf.bench.speed import model_step

MIXTURE = "wiki_large_span_corruption"
RECIPE_GIN = "bench/headline_recipe.gin"
# Validation: 50 batches x 32 sequences (1,600 of the corpus's fixed
# validation examples, ~51k target tokens).
EVAL_STEPS = 50
# The code a run's result depends on: the model, training and CLI code, and
# of the tasks only this task's modules (new tasks elsewhere in the package
# leave these long runs fresh).
CODE = ("layer", "cli", "training") + tuple(
    "tasks/%s.py" % module for module in (
        "wiki_large", "wiki", "wiki_corpus", "denoising", "vocab",
        "registry", "paths"))


@dataclasses.dataclass(frozen=True)
class Protocol:
  model: str  # "mini": models/t5_mini.gin and models/switch_mini.gin
  steps: int
  checkpoint_every: int
  recipe: str  # a tag of the run names: "const" = RECIPE_GIN

  @property
  def tag(self) -> str:
    """What every run name of the protocol carries after the model's."""
    return "%s_%s_%dsteps" % (self.model, self.recipe, self.steps)

  @property
  def dense_gin(self) -> str:
    return "models/t5_%s.gin" % self.model

  @property
  def switch_gin(self) -> str:
    return "models/switch_%s.gin" % self.model

  def speed_name(self, experts: Optional[int]) -> str:
    """The speed benchmark's name of the model (model_step specs)."""
    return ("t5_%s" % self.model if experts is None else
            "switch_%s_E%d" % (self.model, experts))


PROTOCOL = Protocol(model="mini", steps=6000, checkpoint_every=500,
                    recipe="const")
EXPERTS = (8, 32, 128)
SEEDS = (0, 1, 2)


def dense(protocol: Protocol, seed: int) -> Run:
  return _run(protocol, "dense", seed, protocol.dense_gin, ())


def switch(protocol: Protocol, seed: int, experts: int) -> Run:
  return _run(protocol, "switch_E%d" % experts, seed, protocol.switch_gin,
              ("num_experts = %d" % experts, tiny_models.CPU_DISPATCH))


def _run(protocol: Protocol, name: str, seed: int, model_gin: str,
         params) -> Run:
  return Run(name="%s_%s_s%d" % (name, protocol.tag, seed),
             model_gin=model_gin, gin_params=tuple(params), seed=seed,
             train_steps=protocol.steps, recipe_gin=RECIPE_GIN,
             mixture=MIXTURE, checkpoint_every=protocol.checkpoint_every)


def speed_key(protocol: Protocol = PROTOCOL) -> str:
  """The speed benchmark's entry (results/speed/models.json) that times the
  protocol's models side by side: the report's wall-clock axis."""
  return "%s/E%s" % (protocol.model, ",".join(map(str, EXPERTS)))


def speed_specs(protocol: Protocol = PROTOCOL
                ) -> Dict[str, model_step.ModelSpec]:
  """The protocol's models as whole training steps, configured as its runs
  (same gin files, expert counts and dispatch), named by speed_name."""
  specs = [model_step.ModelSpec(protocol.speed_name(None),
                                (protocol.dense_gin,))]
  specs += [model_step.ModelSpec(protocol.speed_name(e),
                                 (protocol.switch_gin,),
                                 switch(protocol, 0, e).gin_params)
            for e in EXPERTS]
  return {spec.name: spec for spec in specs}


def describe(protocol: Protocol) -> str:
  return "%d steps, constant learning rate (%s)" % (protocol.steps,
                                                     RECIPE_GIN)


def plan() -> Dict[str, List[Run]]:
  """The protocol's description -> its runs, seed-major, dense first.

  Seed-major: every model's seed 0 before any seed 1, so that an
  interrupted experiment leaves complete paired comparisons.
  """
  return {describe(PROTOCOL): [
      run for seed in SEEDS for run in
      [dense(PROTOCOL, seed)] + [switch(PROTOCOL, seed, e) for e in EXPERTS]]}


def dense_config(runs: List[Run]) -> str:
  """The config name (run name without its seed) of a group's dense runs."""
  return next(r.name for r in runs if r.model_gin == PROTOCOL.dense_gin
              ).rsplit("_s", 1)[0]
