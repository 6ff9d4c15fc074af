"""Markdown summary and plots of the claims (results/claims/)."""

import json
import os
from typing import Any, Dict, List, Optional

from switch_mtf.bench.claims import analysis as claims_analysis
from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import formatting
from switch_mtf.bench.claims import paper
from switch_mtf.bench.claims import plan as claims_plan
from switch_mtf.bench.common import plots
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import store as store_lib


def _ms(spread: Optional[Dict[str, float]], digits: int = 3) -> str:
  return formatting.mean_std(spread, digits, show_n=True)


def _interval(summary: Optional[Dict[str, Any]]) -> str:
  return formatting.interval(summary, show_n=True)


def _speedup(summary: Optional[Dict[str, Any]]) -> str:
  return formatting.speedup(summary, show_n=True)


def _seeds(row: Dict[str, Any]) -> str:
  text = str(row.get("seeds_done", 0))
  if row.get("diverged"):
    text += ", %d diverged" % row["diverged"]
  return text


def sample_efficiency_md(analysis: Dict[str, Any]) -> List[str]:
  md = ["## Sample efficiency: dense vs Switch at equal FLOPs per token", "",
        "Paper: " + paper.SAMPLE_EFFICIENCY, "",
        "Speed-up = dense steps / first step at which Switch reaches the "
        "dense run's final value (same seed = same data order): geometric "
        "mean over seeds with the 95% t-interval of the log factors, given "
        "only when every seed reached dense's value (otherwise: how many "
        "did not). Val CE - dense: paired by seed, mean with its 95% "
        "t-interval; 'not significant' when the interval contains 0.", "",
        "Training-loss speed-ups use the 100-step mean of the CLI's total "
        "loss, which for Switch includes the load-balancing loss (>= 0.01 "
        "per MoE layer); the 'minus aux floor' column subtracts that floor "
        "(the anchor's 'aux-corrected').", "",
        "| model | seeds | val CE (final) | val CE - dense (95% CI) | "
        "speed-up (val CE)"
        " | speed-up (train loss) | speed-up (train loss minus aux floor) | "
        "final train loss | steps/s |",
        "|---|---|---|---|---|---|---|---|---|"]
  for config, row in analysis["configs"].items():
    md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        config, _seeds(row), _ms(row.get("val_ce")),
        _interval(row.get("val_ce_minus_dense")),
        _speedup(row.get("speedup_val")), _speedup(row.get("speedup_train")),
        _speedup(row.get("speedup_train_without_aux")),
        _ms(row.get("final_train_loss")), _ms(row.get("steps_per_sec"), 2)))
  return md + [""]


def table_md(title: str, analysis: Dict[str, Any], paper_rows: List[str],
             extra: str = "") -> List[str]:
  md = ["## " + title, ""]
  if paper_rows:
    md += ["Paper:", ""] + paper_rows + [""]
  if extra:
    md += [extra, ""]
  paired = any("val_ce_minus_baseline" in row for row in analysis.values())
  md += ["| config | seeds | val CE (final) | %sfinal train loss | steps/s | "
         "dropped tokens (2nd half of training) |" % (
             "val CE - baseline (paired, 95% CI) | " if paired else ""),
         "|---|---|---|---|---|---|" + ("---|" if paired else "")]
  for config, row in analysis.items():
    cells = [config, _seeds(row), _ms(row.get("val_ce"))]
    if paired:
      cells.append(_interval(row.get("val_ce_minus_baseline")))
    cells += [_ms(row.get("final_train_loss")),
              _ms(row.get("steps_per_sec"), 2),
              _ms(row.get("tokens_dropped_fraction"), 4)]
    md.append("| %s |" % " | ".join(cells))
  return md + [""]


def finetune_md(analysis: Dict[str, Any]) -> List[str]:
  md = ["## Expert dropout in fine-tuning (RTE, embedded SuperGLUE)", "",
        "Paper Table 4 (GLUE / SuperGLUE): " + "; ".join(
            "%s %.1f / %.1f" % (k, *v) for k, v in
            paper.EXPERT_DROPOUT.items()), "",
        "| config | seeds | peak val accuracy | final val accuracy |",
        "|---|---|---|---|"]
  for config, row in analysis.items():
    md.append("| %s | %s | %s | %s |" % (
        config, _seeds(row), _ms(row.get("peak_accuracy"), 1),
        _ms(row.get("final_accuracy"), 1)))
  return md + [""]


def _paper_capacity() -> List[str]:
  return ["- %s cf %s: NLP %.3f, %d ex/s" % (m, cf, q, s)
          for (m, cf), (q, s) in paper.CAPACITY_FACTOR.items()] + [
              "- " + paper.DROPPED_TOKENS]


def _paper_router_policy() -> List[str]:
  return ["- %s: NLP %.3f" % (policy, nlp)
          for policy, nlp in paper.ROUTER_POLICY.items()]


def _paper_experts_attention() -> List[str]:
  return ["- %s, %s: %s" % (model, precision, "diverged" if figures is None
                            else "NLP %.3f at 100k steps, %.3f at 16 h, "
                            "%d ex/s" % figures)
          for (model, precision), figures in paper.EXPERTS_ATTENTION.items()]


def plots_md(plan, entries, out_dir: str) -> List[str]:
  md = []
  se = plan.get("sample_efficiency", [])
  groups = claims_analysis.group(se, entries)
  val = {c: [claims_execute.val_curve(e) for _, e in pairs]
         for c, pairs in groups.items()}
  train = {c: [[tuple(p) for p in e.get("train_curve_100", [])]
               for _, e in pairs] for c, pairs in groups.items()}
  if any(any(v) for v in val.values()):
    path = plots.mean_curves(os.path.join(out_dir, "sample_efficiency_val.png"),
                             "Validation CE (mean over seeds, band = min-max)",
                             "validation CE per token", val)
    md.append("![val](%s)" % os.path.basename(path))
  if any(any(v) for v in train.values()):
    path = plots.mean_curves(
        os.path.join(out_dir, "sample_efficiency_train.png"),
        "Training loss, 100-step mean (mean over seeds)", "total loss", train)
    md.append("![train](%s)" % os.path.basename(path))
  return md + [""]


def write(plan: Dict[str, Any], store: store_lib.ResultStore,
          out_dir: str, notes: List[str] = (),
          baselines: Optional[Dict[str, str]] = None) -> str:
  """Writes out_dir/summary.md and the plots; returns its path.

  baselines: claim -> the config its ablation compares with.
  """
  entries = dict(store.items())
  analysis = claims_analysis.analyze(plan, entries, baselines)
  md = ["# The paper's claims at small scale", "",
        "Generated by tools/bench.py from %s. Every run is the real "
        "`switch_mtf_transformer` CLI; its exact train and eval commands are "
        "stored with it. Commands of this suite:" % os.path.basename(
            store.path), ""]
  md += ["- `%s` (%s)" % (c["command"], c["started"]) for c in store.commands]
  md += [""] + list(notes) + [
      "", "Steps/s columns are each run's own CLI rate (input pipeline and "
      "summaries included), measured with whatever else ran on the machine; "
      "side-by-side step-time ratios are in ../speed/summary.md.", ""]
  if "sample_efficiency" in analysis:
    md += sample_efficiency_md(analysis["sample_efficiency"])
    md += plots_md(plan, entries, out_dir)
  if "recipe" in analysis:
    md += table_md("Recipe: the anchor's constant LR 0.01 vs T5's rsqrt "
                   "schedule (seed 0)", analysis["recipe"], [])
  ablation_steps = sorted({r.train_steps
                           for claim in (claims_plan.ABLATION_CLAIMS
                                         + claims_plan.APPENDIX_CLAIMS)
                           for r in plan.get(claim, ())})
  if ablation_steps:
    md += ["## Ablations", "", "Capacity factor, precision, initialisation, "
           "z-loss and the appendices' runs (router exploration, NTLB, "
           "priority dropping, experts in attention) train %s steps each and "
           "compare with their own Switch E8 baseline of that length "
           "(`switch_E8_%dsteps`)." % (
               " / ".join(map(str, ablation_steps)), ablation_steps[0]), ""]
  if "capacity_factor" in analysis:
    md += table_md("Capacity factor: Switch vs top-2 MoE (Table 1)",
                   analysis["capacity_factor"], _paper_capacity(),
                   "Dropped tokens are logged by our Switch layer on CPU; "
                   "Mesh TF's MoE1D (top-2) writes its router summaries "
                   "only on TPU, so its column is empty.")
  if "precision" in analysis:
    md += table_md("Selective precision (Table 2)", analysis["precision"],
                   ["- %s: NLP %.3f, %d ex/s%s" % (
                       k, q, s, ", diverged" if d else "")
                    for k, (q, s, d) in paper.PRECISION.items()])
  if "init_scale" in analysis:
    md += table_md("Initialization scale (Table 3)", analysis["init_scale"],
                   ["- scale %s: NLP %.2f ± %.2f" % (k, *v)
                    for k, v in paper.INIT_SCALE.items()])
  if "router_z_loss" in analysis:
    md += table_md("Router z-loss ablation (ST-MoE; not in the Switch paper)",
                   analysis["router_z_loss"], [])
  if "router_policy" in analysis:
    md += table_md("Router exploration (Table 11)", analysis["router_policy"],
                   _paper_router_policy(),
                   "Training policy only (`Switch.router_policy_train`); "
                   "evaluation routes by argmax. `sample` draws the expert "
                   "from the router's softmax (temperature 1).")
  if "ntlb" in analysis:
    md += table_md("No-Token-Left-Behind (Appendix B)", analysis["ntlb"],
                   ["- " + paper.NTLB],
                   "Up to %d passes (Mesh TF's default): overflow tokens go "
                   "to their next-best expert with room." % (
                       claims_plan.NTLB_TOP_K))
  if "priority_dropping" in analysis:
    md += table_md("Priority dropping at capacity factor %g (Mesh TF's "
                   "switch_max)" % claims_plan.PRIORITY_CAPACITY_FACTOR,
                   analysis["priority_dropping"],
                   ["- " + paper.PRIORITY_DROPPING],
                   "Each expert keeps its tokens with the highest router "
                   "probability instead of the first ones in the group.")
  if "experts_attention" in analysis:
    md += table_md("Experts in attention (Table 10)",
                   analysis["experts_attention"], _paper_experts_attention(),
                   "Experts FF + attention (`%s`: the sparse blocks' "
                   "self-attention gets its queries and keys = values from "
                   "Switch experts), float32." % claims_plan.ATTENTION_GIN)
  if "experts_attention_bfloat16" in analysis:
    md += table_md("Experts in attention, bfloat16 (Table 10)",
                   analysis["experts_attention_bfloat16"],
                   [r for r in _paper_experts_attention() if "bfloat16" in r],
                   "Experts FF vs FF + attention in bfloat16 (float32 "
                   "router), %d steps each (bfloat16 is emulated on CPUs "
                   "without native support), compared with each other." % (
                       claims_plan.FULL.bfloat16_steps))
  if "expert_dropout" in analysis:
    md += finetune_md(analysis["expert_dropout"])
  md += ["", "## Provenance", "",
         "Each run's commit and the load of other processes while it "
         "trained; a run whose code or gin files changed since it ran is "
         "stale (`tools/bench.py --rerun_stale` trains it again).", ""]
  md += provenance.report_lines(sorted(entries.items()))
  return write_summary(out_dir, md, analysis)


def write_summary(out_dir: str, md: List[str],
                  analysis: Dict[str, Any]) -> str:
  """Writes out_dir/summary.md and analysis.json; returns the summary's path."""
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, "summary.md")
  with open(path, "w") as f:
    f.write("\n".join(md) + "\n")
  with open(os.path.join(out_dir, "analysis.json"), "w") as f:
    json.dump(analysis, f, indent=1, sort_keys=True)
  return path
