"""The upcycling measurement: upcycled vs dense continued vs Switch scratch.

Per seed s: t5_tiny is pre-trained for `dense_steps` (run dense_s<s>);
tools/upcycle.py turns its last checkpoint into a Switch model
(upcycled_init_s<s>, every other FFN sparse, `num_experts` experts); then
three arms train `extra_steps` more on the same data stream (data seed
100 + s, not the dense run's): the dense model continued
(dense_continued_s<s>), the upcycled model (upcycled_s<s>, with
gin/upcycle/continued_pretraining.gin) and switch_tiny from scratch
(switch_scratch_s<s>) -- equal extra steps, so the scratch model has had
`dense_steps` fewer in total. All use the claims' pre-training recipe
(bench/pretrain_recipe.gin) on the embedded Wikipedia task and are scored
by validation cross-entropy at their last checkpoint; the upcycled arm's
differences to the others are paired by seed, with t-intervals over seeds.
"""

import dataclasses
import os
import shutil
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import execute
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import stats
from switch_mtf.bench.common import store as store_lib
from switch_mtf.checkpoints import upcycle

ARMS = ("dense_continued", "upcycled", "switch_scratch")
RECIPE_GIN = "upcycle/continued_pretraining.gin"
EXTRA_SEED_OFFSET = 100  # the extra steps' data stream, shared by the arms
CODE_PARTS = provenance.CLI_CODE + ("checkpoints",)
EXPERIMENT_GIN = "experiment.gin"


@dataclasses.dataclass(frozen=True)
class Config:
  seeds: Tuple[int, ...] = (0, 1, 2)
  dense_steps: int = 1500
  extra_steps: int = 1500
  num_experts: int = 8
  placement: str = upcycle.EVERY_OTHER
  checkpoint_every: int = 500
  dense_gin: str = "models/t5_tiny.gin"
  switch_gin: str = "models/switch_tiny.gin"
  recipe_gin: str = "bench/pretrain_recipe.gin"


@dataclasses.dataclass(frozen=True)
class SeedPlan:
  dense: claims_runs.Run
  upcycled_init: claims_runs.Run  # written by upcycling, not trained
  arms: Tuple[claims_runs.Run, ...]  # in ARMS order


def plan(config: Config, work_dir: str) -> List[SeedPlan]:
  """The runs of every seed (model dirs under work_dir)."""
  plans = []
  for seed in config.seeds:
    common = dict(recipe_gin=config.recipe_gin,
                  checkpoint_every=config.checkpoint_every)
    dense = claims_runs.Run("dense_s%d" % seed, config.dense_gin, seed=seed,
                            train_steps=config.dense_steps, **common)
    init = claims_runs.Run(
        "upcycled_init_s%d" % seed,
        os.path.join(work_dir, "upcycled_init_s%d" % seed, EXPERIMENT_GIN),
        seed=seed, train_steps=config.dense_steps, eval_kind="none",
        init_from=dense.name, **common)
    extra = dict(common, seed=EXTRA_SEED_OFFSET + seed,
                 train_steps=config.extra_steps)
    arms = (
        claims_runs.Run("dense_continued_s%d" % seed, config.dense_gin,
                        init_from=dense.name, **extra),
        claims_runs.Run("upcycled_s%d" % seed, init.model_gin,
                        init_from=init.name, **extra),
        claims_runs.Run("switch_scratch_s%d" % seed, config.switch_gin,
                        gin_params=("num_experts = %d" % config.num_experts,),
                        **extra))
    plans.append(SeedPlan(dense, init, arms))
  return plans


def run(config: Config, work_dir: str, results_path: str, command: str,
        log: Callable[[str], None] = print, guarded: bool = True,
        perplexity_eval_steps: int = claims_runs.PERPLEXITY_EVAL_STEPS
        ) -> store_lib.ResultStore:
  """Runs (resumably) every seed's dense run, upcycling and three arms."""
  store = store_lib.ResultStore(results_path, command,
                                meta={"config": dataclasses.asdict(config)})
  launcher = claims_runs.Launcher(work_dir, log, guarded=guarded,
                                  perplexity_eval_steps=perplexity_eval_steps)
  for seed_plan in plan(config, work_dir):
    # Planned with its arms: a dense run whose checkpoint is gone (model
    # dirs are scratch) is trained again while an arm still needs it.
    every_run = [seed_plan.dense, seed_plan.upcycled_init, *seed_plan.arms]
    stored_dense = store.get(seed_plan.dense.name)
    execute.run_all([seed_plan.dense], store, launcher, log, command=command,
                    code_parts=CODE_PARTS, plan_runs=every_run)
    continued, upcycled_arm, _ = seed_plan.arms
    init = seed_plan.upcycled_init
    if stored_dense and store.get(seed_plan.dense.name) != stored_dense:
      # Trained again: a seed's arms must all start from one training of
      # its dense run (a retraining's numbers differ a little).
      for arm in (continued, upcycled_arm):
        if store.done(arm.name):
          log("upcycling: %s started from the earlier training of %s; "
              "training it again" % (arm.name, seed_plan.dense.name))
          store.drop(arm.name)
          shutil.rmtree(launcher.model_dir(arm), ignore_errors=True)
      shutil.rmtree(launcher.model_dir(init), ignore_errors=True)
    upcycle_again = not store.done(init.name) or (
        not store.done(upcycled_arm.name) and
        not launcher.has_final_checkpoint(init))
    needs_dense = upcycle_again or not store.done(continued.name)
    if not store.done(seed_plan.dense.name) or (
        needs_dense and not launcher.has_final_checkpoint(seed_plan.dense)):
      continue  # its (re)training failed: the next call retries it
    if upcycle_again:
      store.put(init.name, _upcycle(config, seed_plan, launcher, command))
    execute.run_all(list(seed_plan.arms), store, launcher, log,
                    plan_runs=[seed_plan.dense, seed_plan.upcycled_init],
                    command=command, code_parts=CODE_PARTS)
  return store


def _upcycle(config: Config, seed_plan: SeedPlan,
             launcher: claims_runs.Launcher, command: str) -> Dict[str, Any]:
  """Upcycles the dense run's last checkpoint into the init run's dir."""
  dense_dir = launcher.model_dir(seed_plan.dense)
  out_dir = launcher.model_dir(seed_plan.upcycled_init)
  result = upcycle.upcycle(
      dense_dir, out_dir, config.num_experts, placement=config.placement,
      gin_files=[os.path.join(dense_dir, "operative_config.gin")],
      step=config.dense_steps, seed=seed_plan.dense.seed, overwrite=True)
  with open(os.path.join(out_dir, EXPERIMENT_GIN), "w") as f:
    f.write("# The upcycled model and the continued pre-training recipe.\n"
            "include '%s'\ninclude '%s'\n" % (result.gin_file, RECIPE_GIN))
  return {"run": seed_plan.upcycled_init.as_dict(),
          "upcycled_from": os.path.join(dense_dir, "model.ckpt-%d"
                                        % config.dense_steps),
          "checkpoint": result.checkpoint_prefix,
          "provenance": provenance.record(
              command, [result.gin_file, RECIPE_GIN], CODE_PARTS)}


def summary(store: store_lib.ResultStore,
            seeds: Sequence[int]) -> Dict[str, Any]:
  """Validation CE per arm and seed; the upcycled arm's paired gains."""
  entries = dict(store.items())
  ce = {arm: {} for arm in ARMS + ("dense",)}
  for seed in seeds:
    for arm in ce:
      entry = entries.get("%s_s%d" % (arm, seed))
      value = claims_analysis.final_val_ce(entry) if entry else None
      if value is not None:
        ce[arm][seed] = value
  gains = {}
  for other in ("dense_continued", "switch_scratch"):
    paired = [ce[other][s] - ce["upcycled"][s] for s in seeds
              if s in ce[other] and s in ce["upcycled"]]
    gains[other] = stats.mean_interval(paired) if paired else None
  return {"val_ce": ce, "upcycled_gain_over": gains,
          "upcycled_best_in_seeds": [
              s for s in seeds if s in ce["upcycled"] and all(
                  s in ce[o] and ce["upcycled"][s] < ce[o][s]
                  for o in ("dense_continued", "switch_scratch"))]}


def _gain_sentence(other: str, gain: Optional[Dict[str, Any]]) -> str:
  """Upcycled minus `other` in words; `gain` is other - upcycled per seed."""
  name = "upcycled - %s, validation CE" % other
  if gain is None:
    return "%s: no paired seeds yet" % name
  side = ("upcycled lower" if gain["mean"] > 0 else
          "upcycled higher" if gain["mean"] < 0 else "equal")
  if gain["low"] is None:
    return "%s: %+.4f (%s; 1 seed, no interval)" % (name, -gain["mean"], side)
  verdict = ("significant, " + side if gain["significant"]
             else "not significant")
  return ("%s: %+.4f, 95%% interval [%+.4f, %+.4f] (Student's t over %d "
          "paired seeds; %s)" % (name, -gain["mean"], -gain["high"],
                                 -gain["low"], gain["n"], verdict))


def report(summary_dict: Dict[str, Any], config: Config,
           commands: Sequence[Dict[str, str]]) -> str:
  """Markdown: the table, the paired gains, the verdict, the commands."""
  ce = summary_dict["val_ce"]
  seeds = list(config.seeds)
  lines = [
      "# Sparse upcycling on the embedded corpus",
      "",
      "t5_tiny pre-trained %d steps, then %d extra steps for each arm "
      "(%d experts in %s FFN); validation cross-entropy per target token "
      "at the last checkpoint (lower is better)."
      % (config.dense_steps, config.extra_steps, config.num_experts,
         "every" if config.placement == upcycle.ALL else "every other"),
      "",
      "| arm | " + " | ".join("seed %d" % s for s in seeds) + " |",
      "|---|" + "---|" * len(seeds)]
  for arm in ("dense",) + ARMS:
    lines.append("| %s | %s |" % (arm, " | ".join(
        "%.4f" % ce[arm][s] if s in ce[arm] else "-" for s in seeds)))
  lines.append("")
  for other, gain in summary_dict["upcycled_gain_over"].items():
    lines.append("- " + _gain_sentence(other, gain))
  best = summary_dict["upcycled_best_in_seeds"]
  complete = [s for s in seeds if all(s in ce[arm] for arm in ARMS)]
  lines += ["", "Upcycled beats both other arms in %d of the %d seeds with "
            "every arm scored (%s); %d seeds planned."
            % (len(best), len(complete), ", ".join(map(str, best)) or "none",
               len(seeds)),
            "", "Commands:", ""]
  lines += ["    %s" % c["command"] for c in commands]
  return "\n".join(lines) + "\n"
