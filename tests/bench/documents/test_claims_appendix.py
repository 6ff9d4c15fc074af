"""The appendices' ablation sections from a fabricated claims store.

The store holds entries for the real runs of the full plan (plan.py's Run
objects and names), with final validation CEs chosen here; the paired
differences are checked against intervals computed here with scipy's t
quantiles, not with the bench's own stats module.
"""

import math

from scipy import stats as scipy_stats

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import paper
from switch_mtf.bench.claims import plan as claims_plan
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.documents import claims_text

BUDGET = claims_plan.FULL
STEPS = BUDGET.ablation_steps


def _switch(steps=STEPS, **knobs):
  """A config's name (its runs' names without the seed) and its runs."""
  runs = tuple(claims_plan.switch(BUDGET, seed, train_steps=steps, **knobs)
               for seed in range(BUDGET.seeds))
  return claims_analysis.config_name(runs[0].name), runs


BASELINE = _switch()
ARGMAX = _switch(router_policy="argmax")
SAMPLE = _switch(router_policy="sample")
INPUT_DROPOUT = _switch(router_policy="input_dropout")
NTLB = _switch(routing="ntlb")
TOKEN_ORDER = _switch(capacity_factor=1.0)
SWITCH_MAX = _switch(capacity_factor=1.0, routing="switch_max")
ATTENTION = _switch(attention_experts=True)
ATTENTION_BF16 = _switch(BUDGET.bfloat16_steps, attention_experts=True,
                         activation_dtype="bfloat16")
FF_BF16 = _switch(BUDGET.bfloat16_steps, activation_dtype="bfloat16")
# Final validation CE per seed (None: that seed is not stored).
CE = {
    BASELINE: (5.00, 5.20, 5.10),
    ARGMAX: (4.90, 5.09, 4.98),  # -0.10, -0.11, -0.12
    SAMPLE: (5.30, None, None),  # one seed so far
    NTLB: (5.06, 5.15, 5.10),  # +0.06, -0.05, 0.00
    TOKEN_ORDER: (5.08, 5.31, 5.21),
    SWITCH_MAX: (5.03, 5.25, 5.14),  # token order - 0.05, 0.06, 0.07
    FF_BF16: (4.95, 5.21, 5.12),
}


def _entry(run, ce):
  return {"run": run.as_dict(), "diverged": False,
          "eval": {str(STEPS): {"neg_log_perplexity": -ce}}}


def _store(folder):
  store = store_lib.ResultStore(str(folder / "runs.json"))
  for (_, runs), values in CE.items():
    for run, ce in zip(runs, values):
      if ce is not None:
        store.put(run.name, _entry(run, ce))
  for run in ATTENTION[1]:  # every seed diverged: no evaluation
    store.put(run.name, {"run": run.as_dict(), "diverged": True})
  argmax = ARGMAX[1]
  stale = dict(_entry(argmax[0], CE[ARGMAX][0]), provenance={
      "code_parts": ["layer"], "code_sha256": "0" * 64, "gin_files": {}})
  fresh = dict(_entry(argmax[1], CE[ARGMAX][1]), provenance={
      "code_parts": ["layer"], "code_sha256": provenance.code_hash(["layer"]),
      "gin_files": {}})
  store.put(argmax[0].name, stale)
  store.put(argmax[1].name, fresh)
  return claims_text.ClaimResults(str(folder))


def _interval(deltas):
  """'mean [low, high], significant or not' from scipy's t quantile."""
  n = len(deltas)
  mean = sum(deltas) / n
  std = math.sqrt(sum((d - mean) ** 2 for d in deltas) / (n - 1))
  half = scipy_stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)
  low, high = mean - half, mean + half
  return "%+.3f [%+.3f, %+.3f], %s" % (
      mean, low, high,
      "not significant" if low <= 0 <= high else "significant")


def _deltas(config, other=BASELINE):
  return [a - b for a, b in zip(CE[config], CE[other])
          if a is not None and b is not None]


def _block(lines, title):
  """One claim's lines, from its title to the next claim's."""
  start = lines.index("**%s.**" % title)
  end = next((i for i in range(start + 1, len(lines))
              if lines[i].startswith("**")), len(lines))
  block = lines[start:end]
  return block[:-1] if block[-1] == "" else block


def _cells(block, label):
  row = next(line for line in block if line.startswith("| %s |" % label))
  return [cell.strip() for cell in row.strip("|").split("|")]


def test_every_planned_appendix_config_has_a_label_and_a_paper_figure():
  plan = claims_plan.claims(BUDGET)
  configs = claims_text.appendix_configs()
  assert list(configs) == list(claims_plan.APPENDIX_CLAIMS)
  for claim in claims_plan.APPENDIX_CLAIMS:
    planned = {claims_analysis.config_name(r.name) for r in plan[claim]}
    assert set(configs[claim]) == planned, claim
  policy = configs["router_policy"]
  assert policy[ARGMAX[0]][1] == "%.3f (Table 11)" % (
      paper.ROUTER_POLICY["argmax"])
  assert policy[SAMPLE[0]][1] == "%.3f (Table 11)" % (
      paper.ROUTER_POLICY["sample"])
  attention = configs["experts_attention"]
  assert configs["experts_attention_bfloat16"][ATTENTION_BF16[0]][1] == (
      "diverged (Table 10)")
  assert attention[ATTENTION[0]][1].startswith("%.3f" % paper.EXPERTS_ATTENTION[
      ("Experts FF + Attention", "float32")][0])
  assert configs["priority_dropping"][TOKEN_ORDER[0]][1] == (
      "%.3f (Table 1)" % paper.CAPACITY_FACTOR[("Switch", 1.0)][0])


def test_router_policy_rows_pair_by_seed_and_say_what_is_missing(tmp_path):
  lines = claims_text.appendix_ablations(_store(tmp_path))
  block = _block(lines, "Router exploration (Table 11)")
  argmax = _cells(block, "argmax (no exploration)")
  assert argmax[1:6] == ["3", "0", "4.990 ± 0.095", _interval(
      _deltas(ARGMAX)), "3 of 3"]
  assert argmax[-1] == "-1.471 (Table 11)"
  assert _interval(_deltas(ARGMAX)).endswith(", significant")
  dropout = _cells(block, "input dropout")
  assert dropout[1:6] == ["0", "0", "not run yet", "–", "–"]
  statement = next(line for line in block
                   if line.startswith("- Minus the baseline"))
  assert "argmax (no exploration): %s;" % _interval(
      _deltas(ARGMAX)) in statement
  # One seed of three: a difference, but no interval yet.
  assert ("sample softmax (temperature 1): +0.300 (1 seed, no interval) "
          "(1 of 3 seeds run);") in statement
  assert statement.endswith("input dropout: not run yet.")
  # argmax s0 is stale, s1 fresh, the other 5 stored runs predate
  # provenance.
  assert block[-1] == (
      "- Runs: 7 of 12 stored; 1 match today's code and gin files, 1 stale "
      "(`%s`), 5 recorded before provenance existed." % ARGMAX[1][0].name)


def test_ntlb_difference_containing_zero_is_not_significant(tmp_path):
  block = _block(claims_text.appendix_ablations(_store(tmp_path)),
                 "No-Token-Left-Behind (Appendix B)")
  expected = _interval(_deltas(NTLB))
  assert expected.endswith("not significant")
  assert _cells(block, "NTLB, up to 4 passes")[4] == expected
  assert "- " + paper.NTLB in block  # no figure in Appendix B
  assert "NTLB, up to 4 passes: %s." % expected in block[-2]


def test_priority_dropping_compares_switch_max_with_token_order(tmp_path):
  block = _block(claims_text.appendix_ablations(_store(tmp_path)),
                 "Priority dropping (Mesh TF's `switch_max`)")
  contrast = next(line for line in block if " minus token order" in line)
  expected = _interval(_deltas(SWITCH_MAX, TOKEN_ORDER))  # -0.06 +- 0.025
  assert expected.startswith("-0.060") and expected.endswith(", significant")
  assert contrast == (
      "- gate priority (`switch_max`), cf 1.0 minus token order, cf 1.0 "
      "(paired by seed, 95%%): %s." % expected)


def test_diverged_and_missing_attention_runs(tmp_path):
  block = _block(claims_text.appendix_ablations(_store(tmp_path)),
                 "Experts in attention (Table 10)")
  diverged = _cells(block, "Experts FF + attention, float32")
  assert diverged[1:4] == ["3", "3", "–"]
  statement = next(line for line in block
                   if line.startswith("- Minus the baseline"))
  assert statement == (
      "- Minus the baseline (paired by seed, 95%): Experts FF + attention, "
      "float32: no finished seed to pair yet, 3 of 3 seeds diverged.")
  # The bfloat16 pair: its experts-FF half is stored, the other not yet.
  block = _block(claims_text.appendix_ablations(_store(tmp_path)),
                 "Experts in attention, bfloat16 (Table 10)")
  assert block[2].startswith("| config (100 steps) |")
  assert _cells(block, "Experts FF, bfloat16 (baseline)")[1:3] == ["3", "0"]
  assert _cells(block, "Experts FF + attention, bfloat16")[-1] == (
      "diverged (Table 10)")
  assert block[-2] == (
      "- Minus the baseline (paired by seed, 95%): Experts FF + attention, "
      "bfloat16: not run yet.")


def test_summary_counts_runs_missing_configs_and_significant_ones(tmp_path):
  results = _store(tmp_path)
  (line,) = claims_text.appendix_summary(results)
  # 30 distinct planned runs; stored: 3 baseline + 3 argmax + 1 sample +
  # 3 NTLB + 3 cf 1.0 + 3 switch_max + 3 diverged attention + 3 bf16 FF
  # (the bfloat16 pair's baseline). Intervals: argmax, NTLB, cf 1.0,
  # switch_max (sample has one seed, the diverged attention none); all but
  # NTLB exclude 0.
  significant = [c for c in (ARGMAX, NTLB, TOKEN_ORDER, SWITCH_MAX)
                 if _interval(_deltas(c)).endswith(", significant")]
  assert significant == [ARGMAX, TOKEN_ORDER, SWITCH_MAX]
  assert line.startswith(
      "- 22 of 30 runs stored, 2 configs not run yet; 3 of 4 differences "
      "to the baseline significant at 95%: argmax (no exploration) (")
  assert "gate priority (`switch_max`), cf 1.0 (%s)" % _interval(
      _deltas(SWITCH_MAX)) in line
  assert line.endswith("(about 0.2 would be by chance alone if no knob "
                       "mattered).")


def test_provenance_column_and_pairs_that_mix_provenance(tmp_path):
  results = _store(tmp_path)
  block = _block(claims_text.appendix_ablations(results),
                 "Router exploration (Table 11)")
  # argmax: s0 stale, s1 fresh, s2 recorded before provenance.
  assert _cells(block, "argmax (no exploration)")[7] == "1 of 3"
  assert _cells(block, "input jitter (the paper's; baseline)")[7] == "0 of 3"
  assert _cells(block, "input dropout")[7] == "–"
  # Only argmax pairs a fresh run (s1) with a baseline run without
  # provenance; sample softmax's one seed and NTLB's predate provenance
  # like their baselines.
  assert claims_text.mixed_pairs(
      results, ["router_policy", "ntlb"]) == [ARGMAX[0]]
  assert block[-2] == (
      "- 1 config is paired with the baseline, for some seed, across "
      "provenance: a run with today's provenance against one recorded before "
      "provenance existed (or stale), so it compares more than the knob: "
      "argmax (no exploration). `python tools/bench.py --parts=claims "
      "--rerun_stale` trains the latter again (column \"stored seeds with "
      "today's provenance\").")
