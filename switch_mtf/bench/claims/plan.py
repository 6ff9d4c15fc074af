"""Which CLI runs each claim needs, and in which order they run.

Runs are named by what they are (model, experts, knob, length, seed), so a
run that serves several claims is trained once: e.g. `switch_E8_500steps_s0`
(cf 1.25, float32, init 1.0) is the baseline of the capacity, precision,
init and z-loss ablations, and `switch_E8_s0` is a point of the
sample-efficiency curve and the start of the fine-tuning runs. After the
sample-efficiency curve, the order puts the first seed of every claim
early, so an interrupted suite still covers every claim.
"""

import dataclasses
from typing import Dict, List, Sequence, Tuple

from switch_mtf.bench.claims.runs import Run
from switch_mtf.bench.common import tiny_models

TOP2_GIN = "bench/moe_top2_tiny.gin"
ATTENTION_GIN = "models/switch_tiny_attention.gin"  # Table 10
RECIPE_GIN = "bench/pretrain_recipe.gin"
RSQRT_RECIPE_GIN = "bench/rsqrt_recipe.gin"
FINETUNE_RECIPE_GIN = "bench/finetune_recipe.gin"
FINETUNE_MIXTURE = "local_super_glue_rte"
SAMPLE_EFFICIENCY_EXPERTS = (4, 8, 16, 32)
ABLATION_EXPERTS = 8  # capacity, precision, init, z-loss, fine-tuning
# Claims trained at Budget.ablation_steps against their own Switch baseline.
ABLATION_CLAIMS = ("capacity_factor", "precision", "init_scale",
                   "router_z_loss")
# The paper's appendices, trained like the ablations against the same
# baseline: Table 11's router exploration, No-Token-Left-Behind (App. B),
# Mesh TF's priority dropping (switch_max) and experts in attention
# (Table 10); Table 10's bfloat16 pair is shorter and has its own baseline
# (Budget.bfloat16_steps).
APPENDIX_CLAIMS = ("router_policy", "ntlb", "priority_dropping",
                   "experts_attention", "experts_attention_bfloat16")
CAPACITY_FACTORS = (1.0, 1.25, 2.0)
DEFAULT_CAPACITY_FACTOR = 1.25
DEFAULT_POLICY = "input_jitter"  # the paper's, and the baseline's
OTHER_POLICIES = ("argmax", "sample", "input_dropout")  # Table 11
DEFAULT_ROUTING = "switch"
NTLB_TOP_K = 4  # Mesh TF's default number of NTLB passes
PRIORITY_CAPACITY_FACTOR = 1.0  # where dropping (and its order) matters


@dataclasses.dataclass(frozen=True)
class Budget:
  """Steps and seeds of a suite."""
  steps: int  # sample efficiency, recipe and the fine-tuning's pretraining
  ablation_steps: int  # capacity, precision, init, z-loss (own baselines)
  seeds: int
  finetune_steps: int
  checkpoint_every: int
  prefix: str  # run-name prefix; quick and full runs never mix
  eval_kind: str = "perplexity"  # of pretraining runs; "none" = skip
  # Table 10's bfloat16 pair (experts FF vs FF + attention). CPUs without
  # native bfloat16 (AVX-512 BF16 or AMX) run TensorFlow's bfloat16 kernels
  # emulated at about a tenth of float32's speed, so the pair trains this
  # many steps and is compared only with itself.
  bfloat16_steps: int = 100


# Ablations compare Switch variants with each other at a third of the
# budget: the 1500-step ranks of seed 0 (capacity factor) already show at
# step 500, and 30 ablation runs at 1500 steps would triple the suite's time.
FULL = Budget(steps=1500, ablation_steps=500, seeds=3, finetune_steps=400,
              checkpoint_every=250, prefix="")
# Quick: training loss only (a separate eval process would double the time).
QUICK = Budget(steps=200, ablation_steps=200, seeds=1, finetune_steps=0,
               checkpoint_every=200, prefix="quick_", eval_kind="none")


def _run(budget: Budget, name: str, seed: int, model_gin: str,
         params: Sequence[str] = (), **kwargs) -> Run:
  """A run named by its knobs.

  Pretraining lengths other than the budget's main one are part of the name.
  """
  steps = kwargs.pop("train_steps", budget.steps)
  if steps != budget.steps and not kwargs.get("init_from"):
    name += "_%dsteps" % steps
  return Run(name="%s%s_s%d" % (budget.prefix, name, seed),
             model_gin=model_gin, gin_params=tuple(params), seed=seed,
             train_steps=steps,
             checkpoint_every=budget.checkpoint_every,
             eval_kind=kwargs.pop("eval_kind", budget.eval_kind), **kwargs)


def dense(budget: Budget, seed: int, **kwargs) -> Run:
  return _run(budget, "dense", seed, tiny_models.DENSE_GIN,
              recipe_gin=RECIPE_GIN, **kwargs)


def switch(budget: Budget, seed: int, experts: int = ABLATION_EXPERTS,
           capacity_factor: float = DEFAULT_CAPACITY_FACTOR,
           init_scale: float = 1.0, z_loss: float = 0.0,
           activation_dtype: str = "float32", router_dtype: str = "float32",
           routing: str = DEFAULT_ROUTING,
           router_policy: str = DEFAULT_POLICY,
           attention_experts: bool = False, **kwargs) -> Run:
  """Switch E experts; the name lists every knob that is not the default.

  Knobs added later append to the name after the earlier ones, so every
  run planned before keeps its name and config.
  """
  name = "switch_E%d" % experts
  params = ["num_experts = %d" % experts, tiny_models.CPU_DISPATCH]
  if capacity_factor != DEFAULT_CAPACITY_FACTOR:
    name += "_cf%r" % capacity_factor
    params.append("Switch.capacity_factor_train = %r" % capacity_factor)
  if init_scale != 1.0:
    name += "_init%g" % init_scale
    params.append("VarianceScalingInitializer.scale = %r" % init_scale)
  if z_loss:
    name += "_z%g" % z_loss
    params.append("Switch.router_z_loss_coef = %r" % z_loss)
  if activation_dtype != "float32":
    name += "_" + activation_dtype
  if router_dtype != "float32":  # paper Table 2's unstable ablation
    name += "_router_" + router_dtype
    params.append("Switch.router_dtype = '%s'" % router_dtype)
  if routing != DEFAULT_ROUTING:
    params.append("Switch.routing = '%s'" % routing)
    if routing == "ntlb":
      routing += str(NTLB_TOP_K)
      params.append("Switch.ntlb_top_k = %d" % NTLB_TOP_K)
    name += "_" + routing
  if router_policy != DEFAULT_POLICY:
    name += "_policy_" + router_policy
    params.append("Switch.router_policy_train = '%s'" % router_policy)
  model_gin = tiny_models.SWITCH_GIN
  if attention_experts:
    name += "_attention"
    model_gin = ATTENTION_GIN
  return _run(budget, name, seed, model_gin, params, recipe_gin=RECIPE_GIN,
              activation_dtype=activation_dtype, **kwargs)


def top2(budget: Budget, seed: int,
         capacity_factor: float = DEFAULT_CAPACITY_FACTOR, **kwargs) -> Run:
  name = "top2_E%d" % ABLATION_EXPERTS
  params = ["num_experts = %d" % ABLATION_EXPERTS]
  if capacity_factor != DEFAULT_CAPACITY_FACTOR:
    name += "_cf%r" % capacity_factor
  params.append("MoE1D.capacity_factor_train = %r" % capacity_factor)
  return _run(budget, name, seed, TOP2_GIN, params, recipe_gin=RECIPE_GIN,
              **kwargs)


def claims(budget: Budget) -> Dict[str, List[Run]]:
  """claim -> its runs (seeds 0..n-1), for the analysis."""
  seeds = range(budget.seeds)
  out: Dict[str, List[Run]] = {
      "sample_efficiency": [dense(budget, s) for s in seeds] + [
          switch(budget, s, experts=e)
          for e in SAMPLE_EFFICIENCY_EXPERTS for s in seeds],
  }
  if budget is QUICK:
    return out
  out["recipe"] = [
      _run(budget, "rsqrt_dense", 0, tiny_models.DENSE_GIN,
           recipe_gin=RSQRT_RECIPE_GIN),
      _run(budget, "rsqrt_switch_E%d" % ABLATION_EXPERTS, 0,
           tiny_models.SWITCH_GIN,
           ["num_experts = %d" % ABLATION_EXPERTS],
           recipe_gin=RSQRT_RECIPE_GIN),
      dense(budget, 0), switch(budget, 0)]
  steps = budget.ablation_steps
  out["capacity_factor"] = [
      switch(budget, s, capacity_factor=cf, train_steps=steps)
      for cf in CAPACITY_FACTORS for s in seeds] + [
          top2(budget, s, cf, train_steps=steps)
          for cf in CAPACITY_FACTORS for s in seeds]
  out["precision"] = [
      switch(budget, s, activation_dtype=activations, router_dtype=router,
             train_steps=steps)
      for activations, router in (("float32", "float32"),
                                  ("bfloat16", "float32"),
                                  ("bfloat16", "bfloat16"))
      for s in seeds]
  out["init_scale"] = [switch(budget, s, init_scale=scale, train_steps=steps)
                       for scale in (0.1, 1.0) for s in seeds]
  out["router_z_loss"] = [switch(budget, s, z_loss=z, train_steps=steps)
                          for z in (0.0, 0.001) for s in seeds]
  out["expert_dropout"] = [
      finetune(budget, s, expert_dropout) for expert_dropout in (0.1, 0.4)
      for s in seeds] + [switch(budget, s) for s in seeds]
  out.update(_appendix_claims(budget))
  return out


def _appendix_claims(budget: Budget) -> Dict[str, List[Run]]:
  """The appendices' ablations, each with the shared baseline's runs."""
  seeds = range(budget.seeds)
  steps = budget.ablation_steps
  baseline = [switch(budget, s, train_steps=steps) for s in seeds]
  cf = PRIORITY_CAPACITY_FACTOR
  return {
      "router_policy": baseline + [
          switch(budget, s, router_policy=policy, train_steps=steps)
          for policy in OTHER_POLICIES for s in seeds],
      "ntlb": baseline + [switch(budget, s, routing="ntlb", train_steps=steps)
                          for s in seeds],
      "priority_dropping": baseline + [
          switch(budget, s, capacity_factor=cf, routing=routing,
                 train_steps=steps)
          for routing in (DEFAULT_ROUTING, "switch_max") for s in seeds],
      # Experts FF (baseline) vs FF + attention, in float32; and the same
      # pair in bfloat16 (with the float32 router of selective precision).
      "experts_attention": baseline + [
          switch(budget, s, attention_experts=True, train_steps=steps)
          for s in seeds],
      "experts_attention_bfloat16": [
          switch(budget, s, activation_dtype="bfloat16",
                 attention_experts=attention,
                 train_steps=budget.bfloat16_steps)
          for attention in (False, True) for s in seeds],
  }


def ablation_baselines(budget: Budget) -> Dict[str, str]:
  """claim -> the config its ablation compares with (paired by seed).

  Switch E8 at the ablation length with every knob at its default; for
  the bfloat16 pair of Table 10, its experts-FF half.
  """
  name = switch(budget, 0, train_steps=budget.ablation_steps).name
  out = {claim: name[:-len("_s0")]
         for claim in ABLATION_CLAIMS + APPENDIX_CLAIMS}
  out["experts_attention_bfloat16"] = switch(
      budget, 0, activation_dtype="bfloat16",
      train_steps=budget.bfloat16_steps).name[:-len("_s0")]
  return out


def finetune(budget: Budget, seed: int, expert_dropout: float) -> Run:
  """Fine-tunes the seed's Switch E8 pretraining run on RTE."""
  return _run(budget, "ft_rte_switch_E%d_ed%g" % (ABLATION_EXPERTS,
                                                   expert_dropout), seed,
              tiny_models.SWITCH_GIN,
              ["num_experts = %d" % ABLATION_EXPERTS, tiny_models.CPU_DISPATCH,
               "Switch.expert_dropout_rate = %r" % expert_dropout],
              train_steps=budget.finetune_steps,
              recipe_gin=FINETUNE_RECIPE_GIN, mixture=FINETUNE_MIXTURE,
              init_from=switch(budget, seed).name, eval_kind="decode")


def ordered_runs(plan: Dict[str, List[Run]]) -> List[Run]:
  """All runs once, in the order they should run, checked.

  The sample-efficiency curve first (all seeds: the main claim), then the
  other claims seed-major (every claim's seed 0 before any seed 1), each
  fine-tuning run after the pretraining run it starts from.

  Raises:
    ValueError: two different configs share a name.
  """
  by_name: Dict[str, Run] = {}
  for runs in plan.values():
    for run in runs:
      if by_name.setdefault(run.name, run) != run:
        raise ValueError("two different runs are both named %s: %s and %s"
                         % (run.name, by_name[run.name], run))
  def order(run: Run) -> Tuple[int, int, int, int]:
    main_claim = run in plan.get("sample_efficiency", ())
    return (0 if main_claim else 1, run.seed, 1 if run.init_from else 0,
            _claim_rank(plan, run))
  return sorted(by_name.values(), key=order)


def _claim_rank(plan: Dict[str, List[Run]], run: Run) -> int:
  for rank, runs in enumerate(plan.values()):
    if run in runs:
      return rank
  return len(plan)
