"""Paper Table 6 on the headline protocol: distilling a Switch teacher.

`tools/bench.py --parts=headline_distill`, after the headline grid. The
paper distils Switch-Base into the FLOP-matched T5-Base and reports the
fraction of the teacher's gain over T5-Base the student keeps; this needs
a teacher clearly better than dense, which the demo's tiny teacher is not.

Teacher (decided in code from the stored runs, `decide`): among the
headline Switch models with at least 32 experts, the one with the lowest
mean final validation CE, once every seed of dense and of each candidate
is stored; refused unless its final CE minus dense's, paired by seed, has
a 95% t-interval below 0. Each student of seed s learns from the
teacher's seed-s run (its final checkpoint under output/bench/<run>/: model
dirs are scratch, so tools/bench.py keeps the candidates' dirs for this
part, and retrains a teacher whose dir is gone).

Students: the dense shape of the protocol's model (t5_tiny) that
distill/every_other_switch.gin builds from the teacher's stack, trained on
the headline protocol (same data order as the seed's dense run, same steps,
recipe and checkpoints, evaluated on the same validation set, scored
without the teacher). Table 6's rows:
  distillation                 soft loss only, random init
  + init non-expert weights    soft loss only, init from the teacher
  + 0.75 hard / 0.25 soft mix  fraction_soft 0.25, init from the teacher
  init only, no distillation   distill/init_only.gin (hard loss, init)
The paper does not say what the first two rows mixed; it lists "+ 0.75 mix
of hard and soft loss" as a change from the row above it, so the rows
above did not mix: fraction_soft 1.0 (the teacher's soft targets only).
Temperature 1 (distill/student_teacher.gin; the paper does not give it).

Cost: a student step is a dense training step plus the teacher's forward
pass, about a third of its training step (FORWARD_SHARE); an init-only
step is a dense step. At the idle step times of the protocol's models
(`estimated_minutes`, shown in the report) four students per seed cost
about as much as the grid's four models again, so the distillation comes
on top of the grid's budget. The runs go seed-major (all four rows of seed
0 first) and the report shows what exists, with "n=1, no interval" for a
single seed.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims.runs import Run
from switch_mtf.bench.common import stats

CANDIDATE_EXPERTS = (32, 128)
STUDENT_TEACHER_GIN = "distill/pretrain.gin"
INIT_ONLY_GIN = "distill/init_only.gin"
# A teacher's forward pass as a share of its training step (forward +
# backward + update ~ 3 forwards); for the cost estimate only.
FORWARD_SHARE = 1.0 / 3.0


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of paper Table 6: a student config."""
  name: str  # run-name prefix
  label: str
  model_gin: str
  gin_params: Tuple[str, ...]
  paper_nlp: str  # the paper's neg. log perplexity
  paper_kept: str  # the paper's fraction of the teacher's gain kept

  @property
  def distils(self) -> bool:
    return self.model_gin == STUDENT_TEACHER_GIN


ROWS = (
    Row("distill_soft1", "distillation (soft loss only)", STUDENT_TEACHER_GIN,
        ("FRACTION_SOFT = 1.0", "INIT_STUDENT_FROM_TEACHER = False"),
        "-1.631", "3%"),
    Row("distill_soft1_init", "+ init non-expert weights",
        STUDENT_TEACHER_GIN,
        ("FRACTION_SOFT = 1.0", "INIT_STUDENT_FROM_TEACHER = True"),
        "-1.598", "20%"),
    Row("distill_soft0.25_init", "+ 0.75 hard / 0.25 soft mix",
        STUDENT_TEACHER_GIN,
        ("FRACTION_SOFT = 0.25", "INIT_STUDENT_FROM_TEACHER = True"),
        "-1.580", "29%"),
    Row("init_only", "init non-expert weights, no distillation",
        INIT_ONLY_GIN, (), "-1.639", "–"),
)
# Scored without the teacher: with no soft loss Mesh TF skips it.
STUDENT_EVAL = ("FRACTION_SOFT = 0.0",)
PAPER_DENSE_NLP = "-1.636"  # T5-Base
PAPER_TEACHER_NLP = "-1.444"  # Switch-Base


def student(protocol: headline.Protocol, seed: int, teacher_experts: int,
            row: Row) -> Run:
  """Row `row` of seed `seed`, learning from that seed's Switch run."""
  teacher = headline.switch(protocol, seed, teacher_experts)
  return Run(name="%s_from_E%d_%s_s%d" % (
      row.name, teacher_experts, protocol.tag, seed),
             model_gin=row.model_gin, gin_params=row.gin_params, seed=seed,
             train_steps=protocol.steps, recipe_gin=headline.RECIPE_GIN,
             mixture=headline.MIXTURE,
             checkpoint_every=protocol.checkpoint_every,
             teacher=teacher.name,
             eval_gin_params=STUDENT_EVAL if row.distils else ())


def students(teacher_experts: int) -> List[Run]:
  """Every row of every seed, seed-major (a seed's four rows together)."""
  return [student(headline.PROTOCOL, seed, teacher_experts, row)
          for seed in headline.SEEDS for row in ROWS]


def candidate_teachers() -> List[str]:
  """The runs that may become teachers: their model dirs must be kept."""
  return [headline.switch(headline.PROTOCOL, seed, e).name
          for e in CANDIDATE_EXPERTS for seed in headline.SEEDS]


def _finals(entries: Dict[str, Any], runs: Sequence[Run]
            ) -> Dict[int, float]:
  out = {}
  for run in runs:
    value = (claims_analysis.final_val_ce(entries[run.name])
             if run.name in entries else None)
    if value is not None:
      out[run.seed] = value
  return out


def _config_runs(experts: Optional[int]) -> List[Run]:
  return [headline.dense(headline.PROTOCOL, s) if experts is None else
          headline.switch(headline.PROTOCOL, s, experts)
          for s in headline.SEEDS]


def decide(entries: Dict[str, Any]) -> Dict[str, Any]:
  """The teacher by the rule above, or why there is none (yet).

  Returns {"teacher": experts or None, "reason": text, "means": experts ->
  mean final CE, "gain": the teacher's final CE minus dense's, paired}.
  """
  dense = _finals(entries, _config_runs(None))
  finals = {e: _finals(entries, _config_runs(e)) for e in CANDIDATE_EXPERTS}
  seeds = len(headline.SEEDS)
  missing = ["dense"] * (len(dense) < seeds) + [
      "Switch E%d" % e for e in CANDIDATE_EXPERTS if len(finals[e]) < seeds]
  if missing:
    return {"teacher": None, "reason": (
        "not enough runs: the teacher is chosen once every seed of dense "
        "and of each candidate is stored (missing seeds of %s)"
        % ", ".join(missing))}
  means = {e: sum(v.values()) / seeds for e, v in finals.items()}
  best = min(CANDIDATE_EXPERTS, key=lambda e: means[e])
  gain = stats.mean_interval([finals[best][s] - dense[s]
                              for s in headline.SEEDS])
  out = {"teacher": best, "means": means, "gain": gain}
  if not (gain["significant"] and gain["mean"] < 0):
    out.update(teacher=None, reason=(
        "Switch E%d, the best candidate, is not clearly better than dense: "
        "its final validation CE minus dense's, paired by seed, is %+.3f "
        "[%+.3f, %+.3f] (95%% t-interval), which does not exclude 0 on the "
        "better side; the fraction of its gain a student keeps would "
        "measure noise" % (best, gain["mean"], gain["low"], gain["high"])))
  else:
    out["reason"] = ("Switch E%d has the lowest mean final validation CE of "
                     "the candidates and beats dense by %.3f [%.3f, %.3f]"
                     % (best, -gain["mean"], -gain["high"], -gain["low"]))
  return out


def fraction_kept(dense: float, student_ce: float,
                  teacher: float) -> Optional[float]:
  """(dense - student) / (dense - teacher); None if the teacher is not
  better than dense on this seed (the ratio then means nothing)."""
  gain = dense - teacher
  return (dense - student_ce) / gain if gain > 0 else None


def analyze(entries: Dict[str, Any], teacher_experts: int
            ) -> Dict[str, Any]:
  """Per row: final CE per seed, paired difference to dense, gain kept.

  Paired by seed: student s against dense s and teacher s. The fraction
  kept gets a 95% t-interval over the seeds that have all three.
  """
  dense = _finals(entries, _config_runs(None))
  teacher = _finals(entries, _config_runs(teacher_experts))
  rows = {}
  for row in ROWS:
    own = _finals(entries, [student(headline.PROTOCOL, s, teacher_experts,
                                    row) for s in headline.SEEDS])
    paired = sorted(set(own) & set(dense) & set(teacher))
    kept = {s: fraction_kept(dense[s], own[s], teacher[s]) for s in paired}
    out: Dict[str, Any] = {"final": own, "undefined_seeds": sorted(
        s for s, k in kept.items() if k is None)}
    if paired:
      out["minus_dense"] = stats.mean_interval(
          [own[s] - dense[s] for s in paired])
    defined = [k for k in kept.values() if k is not None]
    if defined:
      out["kept"] = stats.mean_interval(defined)
    rows[row.name] = out
  return {"teacher": teacher_experts, "dense": dense,
          "teacher_final": teacher, "rows": rows}


def estimated_minutes(times: Dict[str, float], teacher_experts: int,
                      row: Row) -> Optional[float]:
  """Training minutes of one student run at the idle step times.

  times: speed spec name -> ms of a whole training step. A distilling
  student's step is a dense step plus the teacher's forward pass
  (FORWARD_SHARE of its training step); an init-only run is a dense step.
  """
  dense = times.get(headline.PROTOCOL.speed_name(None))
  teacher = times.get(headline.PROTOCOL.speed_name(teacher_experts))
  if dense is None or teacher is None:
    return None
  step = dense + (FORWARD_SHARE * teacher if row.distils else 0.0)
  return headline.PROTOCOL.steps * step / 60000.0
