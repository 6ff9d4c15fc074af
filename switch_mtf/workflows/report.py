"""`report.md` + PNG plots for one or more runs, from their event files.

Used by `make demo` (Switch vs dense pretraining, then fine-tuning) and by
tools/router_report.py for any run. Every number in the report is read from
the runs' outputs; the comparison sentences are computed, and the caveats
say what one short run on a CPU cannot show.
"""

import ast
import collections
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from switch_mtf.cli import progress as cli_progress
from switch_mtf.workflows import plots
from switch_mtf.workflows import run_data

REPORT_NAME = "report.md"
# Router metrics plotted over training (the others are in the table).
_ROUTER_PLOTS = (
    ("tokens_dropped_fraction", "fraction of tokens dropped (over capacity)"),
)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """Compare run `sparse` against run `dense` (labels)."""
  sparse: str
  dense: str


@dataclasses.dataclass
class Report:
  path: str
  plots: List[str]


def _write(path: str, data: bytes) -> None:
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(data)


def _fmt(value: Optional[float], digits: int = 3) -> str:
  if value is None:
    return "–"
  return "%.*f" % (digits, value)


def _val_ce(run: run_data.RunData) -> Optional[Tuple[float, int]]:
  """Validation cross-entropy per target token at the last step, if any."""
  for key, series in run.evals.items():
    if key.endswith("/neg_log_perplexity") and series:
      step, value = series[-1]
      return -value, int(step)
  return None


def _summary_table(runs: Sequence[run_data.RunData]) -> List[str]:
  lines = [
      "| run | parameters | steps | final training loss (mean of last 10%) "
      "| validation CE per token (step) | steps/s (median) | training time "
      "(incl. start-up) |",
      "|---|---|---|---|---|---|---|"]
  for run in runs:
    val = _val_ce(run)
    lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
        run.label,
        "{:,}".format(run.parameters) if run.parameters else "–",
        run.final_step if run.final_step is not None else "–",
        _fmt(run_data.final_mean(run.loss)),
        "%.3f (%d)" % val if val else "–",
        _fmt(run.steps_per_second, 2),
        cli_progress.format_duration(run.loss_wall[-1][0])
        if run.loss_wall else "–"))
  return lines


def _comparison(sparse: run_data.RunData,
                dense: run_data.RunData) -> List[str]:
  """Sentences that say what the two runs measured, not what they prove."""
  lines = []
  sparse_final = run_data.final_mean(sparse.loss)
  dense_final = run_data.final_mean(dense.loss)
  if sparse_final is None or dense_final is None:
    return ["Not enough loss points to compare %s with %s."
            % (sparse.label, dense.label)]
  difference = sparse_final - dense_final
  lines.append(
      "- Final training loss: %s %.3f vs %s %.3f (%+.3f). The training loss "
      "of %s includes its load-balancing loss (at least `loss_coef` × the "
      "number of Switch layers, 0.02 for switch_tiny), so it overstates "
      "its cross-entropy slightly."
      % (sparse.label, sparse_final, dense.label, dense_final, difference,
         sparse.label))
  window = run_data.smoothing_window(len(sparse.loss))
  reached = run_data.first_step_at_or_below(sparse.loss, dense_final, window)
  steps = sparse.final_step or 0
  if reached:
    lines.append(
        "- %s's %d-step mean loss first reached %s's final loss at step %d "
        "of %d: %.2f× fewer steps (the paper's 'speed-up' measure)."
        % (sparse.label, window, dense.label, reached, steps,
           steps / float(reached)))
  else:
    lines.append("- %s's %d-step mean loss never reached %s's final loss "
                 "within %d steps." % (sparse.label, window, dense.label,
                                       steps))
  if reached and sparse.loss_wall and dense.loss_wall:
    seconds = dict(zip((s for s, _ in sparse.loss),
                       (t for t, _ in sparse.loss_wall)))[reached]
    dense_seconds = dense.loss_wall[-1][0]
    faster, ratio = ((sparse.label, dense_seconds / seconds)
                     if seconds < dense_seconds else
                     (dense.label, seconds / max(dense_seconds, 1e-9)))
    lines.append(
        "- In training time (incl. process start-up): %s got there after "
        "%s; %s took %s for its whole run. %s was %.2f× faster in "
        "wall-clock." % (sparse.label, cli_progress.format_duration(seconds),
                         dense.label,
                         cli_progress.format_duration(dense_seconds),
                         faster, ratio))
  sparse_val, dense_val = _val_ce(sparse), _val_ce(dense)
  if sparse_val and dense_val:
    lines.append(
        "- Validation cross-entropy (eval mode, no aux loss, the cleaner "
        "quality number): %s %.3f vs %s %.3f (%+.3f)."
        % (sparse.label, sparse_val[0], dense.label, dense_val[0],
           sparse_val[0] - dense_val[0]))
  if sparse.steps_per_second and dense.steps_per_second:
    lines.append(
        "- Speed: %s %.2f steps/s vs %s %.2f steps/s (%.2f× the time per "
        "step)." % (sparse.label, sparse.steps_per_second, dense.label,
                    dense.steps_per_second,
                    dense.steps_per_second / sparse.steps_per_second))
  if sparse.parameters and dense.parameters:
    lines.append("- Parameters: %s has %.1f× those of %s at about the same "
                 "FLOPs per token." % (sparse.label,
                                       sparse.parameters / dense.parameters,
                                       dense.label))
  return lines


def _router_table(run: run_data.RunData) -> List[str]:
  lines = ["| layer | experts | busiest expert (× balanced) | idlest expert "
           "(× balanced) | tokens dropped | router entropy | top-1 prob |",
           "|---|---|---|---|---|---|---|"]
  for layer in run.router.values():
    finals = {i: s[-1][1] for i, s in layer.expert_fraction.items() if s}
    experts = layer.num_experts
    busiest = max(finals.values()) * experts if finals else None
    idlest = min(finals.values()) * experts if finals else None

    def last(metric):
      series = layer.scalars.get(metric)
      return series[-1][1] if series else None
    lines.append("| %s | %d | %s | %s | %s | %s | %s |" % (
        layer.name, experts, _fmt(busiest, 2), _fmt(idlest, 2),
        _fmt(last("tokens_dropped_fraction")), _fmt(last("router_entropy")),
        _fmt(last("top1_probability_mean"))))
  return lines


def _router_sanity(run: run_data.RunData) -> List[str]:
  """Flags expert fractions that do not sum to 1 (broken metrics)."""
  lines = []
  for layer in run.router.values():
    by_step: Dict[float, float] = collections.defaultdict(float)
    for series in layer.expert_fraction.values():
      for step, value in series:
        by_step[step] += value
    bad = sorted(step for step, total in by_step.items()
                 if abs(total - 1.0) > 0.01)
    if bad:
      lines.append(
          "**Warning:** in %s the expert fractions do not sum to 1 at %d of "
          "%d summarised steps (e.g. %.3f at step %d): these router metrics "
          "are not trustworthy." % (layer.name, len(bad), len(by_step),
                                    by_step[bad[0]], bad[0]))
  return lines + [""] if lines else []


def _read_lines(path: str) -> Optional[List[str]]:
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return f.read().splitlines()


def _literal(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def majority_baseline(eval_dir: str, task_name: str,
                      step: int) -> Optional[Dict[str, object]]:
  """The task's metrics for always predicting the most common target, and
  the class counts of targets and predictions (from the eval's dumps).

  None when the eval wrote no dumps or the task is not registered.
  """
  targets = _read_lines(os.path.join(eval_dir, task_name + "_targets"))
  predictions = _read_lines(os.path.join(
      eval_dir, "%s_%d_predictions" % (task_name, step)))
  if not targets:
    return None
  import seqio  # pylint: disable=g-import-not-at-top
  import switch_mtf.tasks  # pylint: disable=g-import-not-at-top,unused-import
  try:
    task = seqio.get_mixture_or_task(task_name)
  except ValueError:
    return None
  values = [_literal(t) for t in targets]
  majority = collections.Counter(values).most_common(1)[0][0]
  metrics = {}
  for metric_fn in task.metric_fns:
    metrics.update(metric_fn(values, [majority] * len(values)))
  return {
      "metrics": metrics,
      "majority": majority,
      "targets": collections.Counter(targets),
      "predictions": collections.Counter(predictions or []),
  }


def _decode_evals(run: run_data.RunData
                  ) -> Dict[Tuple[str, str], Dict[str, run_data.Series]]:
  """(eval subdir, task) -> metric -> series."""
  grouped: Dict[Tuple[str, str], Dict[str, run_data.Series]] = {}
  for key, series in run.evals.items():
    subdir, _, tag = key.partition("/")
    parts = tag.split("/")
    if len(parts) == 3 and parts[0] == "eval":
      grouped.setdefault((subdir, parts[1]), {})[parts[2]] = series
  return grouped


def _eval_section(run: run_data.RunData, out_dir: str,
                  written: List[str]) -> List[str]:
  lines = []
  for (subdir, task), metrics in _decode_evals(run).items():
    step = int(max(s[-1][0] for s in metrics.values()))
    finals = {m: s[-1][1] for m, s in metrics.items()}
    baseline = majority_baseline(os.path.join(run.model_dir, subdir), task,
                                 step)
    lines.append("**%s** on `%s` (%s split, checkpoint step %d):" % (
        run.label, task, subdir.replace("_eval", ""), step))
    lines.append("")
    lines.append("| metric | model | majority-class baseline |")
    lines.append("|---|---|---|")
    for metric, value in finals.items():
      base = baseline["metrics"].get(metric) if baseline else None
      lines.append("| %s | %.2f | %s |" % (metric, value, _fmt(base, 2)))
    if baseline:
      lines.append("")
      lines.append(
          "Targets by class: %s; the model's predictions: %s (classes as "
          "written in the eval dumps%s)." % (
              _counts(baseline["targets"]), _counts(baseline["predictions"]),
              "; `-1` is what T5's postprocessor makes of a decoded text that "
              "is no label" if "-1" in baseline["predictions"] else ""))
    name = "eval_%s_%s.png" % (_slug(run.label), _slug(task))
    _write(os.path.join(out_dir, name), plots.eval_metrics(
        "%s: %s (step %d)" % (run.label, task, step), finals,
        baseline["metrics"] if baseline else None))
    written.append(name)
    lines.append("")
    lines.append("![%s](%s)" % (task, name))
    lines.append("")
  return lines


def _counts(counter) -> str:
  return ", ".join("`%s` × %d" % (k, v) for k, v in counter.most_common())


def _slug(text: str) -> str:
  return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def write_report(runs: Sequence[run_data.RunData], out_dir: str,
                 title: str, compare: Optional[Comparison] = None,
                 intro: Sequence[str] = (),
                 pretraining: Optional[Sequence[str]] = None) -> Report:
  """Writes report.md and its PNGs into out_dir (local or gs://).

  Args:
    runs: the runs, in the order the report lists them.
    out_dir: where to write.
    title: the report's heading.
    compare: a sparse/dense pair of labels to compare.
    intro: markdown lines after the title (what ran, how long).
    pretraining: labels of the runs whose loss curves share the loss plots
      (default: all).
  """
  tf.io.gfile.makedirs(out_dir)
  written: List[str] = []
  by_label = {run.label: run for run in runs}
  curve_runs = [by_label[l] for l in pretraining] if pretraining else list(
      runs)
  lines = ["# %s" % title, ""]
  lines.extend(intro)
  lines += ["", "## Runs", ""] + _summary_table(runs)
  lines += ["", "Loss source: " + "; ".join(
      "%s: %s" % (r.label, r.loss_source) for r in runs) + ".", ""]

  for wall, name in ((False, "loss_vs_steps.png"),
                     (True, "loss_vs_wallclock.png")):
    _write(os.path.join(out_dir, name), plots.training_loss(curve_runs, wall))
    written.append(name)
  lines += ["## Training loss", "",
            "![loss vs steps](loss_vs_steps.png)",
            "![loss vs wall-clock](loss_vs_wallclock.png)", ""]
  if compare and compare.sparse in by_label and compare.dense in by_label:
    lines += ["### %s vs %s" % (compare.sparse, compare.dense), ""]
    lines += _comparison(by_label[compare.sparse], by_label[compare.dense])
    lines.append("")

  for run in runs:
    if not run.router:
      continue
    lines += ["## Router: %s" % run.label, "",
              "Values at the last summarised step (step %s); the plots show "
              "them over training. Written every 100 steps by the Switch "
              "layer on every platform (switch_mtf/layer/metrics.py)."
              % _last_router_step(run),
              ""]
    lines += _router_table(run)
    lines.append("")
    lines += _router_sanity(run)
    load = plots.expert_load(run)
    if load:
      name = "expert_load_%s.png" % _slug(run.label)
      _write(os.path.join(out_dir, name), load)
      written.append(name)
      lines += ["![expert load](%s)" % name, ""]
    for metric, ylabel in _ROUTER_PLOTS:
      image = plots.router_scalar(run, metric, ylabel)
      if image:
        name = "%s_%s.png" % (metric, _slug(run.label))
        _write(os.path.join(out_dir, name), image)
        written.append(name)
        lines += ["![%s](%s)" % (metric, name), ""]

  eval_lines = []
  for run in runs:
    eval_lines += _eval_section(run, out_dir, written)
  if eval_lines:
    lines += ["## Evaluation", ""] + eval_lines

  lines += ["## Commands", "",
            "The CLI command lines each run recorded in "
            "`<model_dir>/commands/`:", ""]
  for run in runs:
    for command in run.commands:
      lines += ["```", command, "```"]
  lines.append("")
  path = os.path.join(out_dir, REPORT_NAME)
  _write(path, "\n".join(lines).encode("utf-8"))
  return Report(path=path, plots=written)


def _last_router_step(run: run_data.RunData) -> str:
  steps = [s[-1][0] for layer in run.router.values()
           for s in list(layer.scalars.values()) +
           list(layer.expert_fraction.values()) if s]
  return "%d" % max(steps) if steps else "–"
