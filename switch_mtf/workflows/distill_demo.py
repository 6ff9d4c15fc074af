"""`make distill-demo`: distil the demo's Switch model into a dense student.

Works in `make demo`'s run dir (tools/demo.py): the demo's pretrained Switch
model is the teacher and its dense model the baseline trained from scratch.
Demo phases still missing are run first, with the demo's saved options, so a
later `make demo` resumes from them. Then the dense student of
distill/pretrain.gin (the teacher's stack with dense FFNs, the FLOP-matched
dense model) trains as many steps on the same batches, from the teacher's
non-expert weights, on the mixed hard/soft loss, and is evaluated like the
others. The report puts the validation losses side by side with the paper's
metric, the fraction of the teacher's gain the student keeps.

With `ablations`, two more students separate what Table 6 separates:
distillation without the weight initialisation, and the initialisation
without distillation (distill/init_only.gin).
"""

import dataclasses
import json
import math
import os
import sys
import time
from typing import IO, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from switch_mtf.cli import checkpoints
from switch_mtf.cli import events
from switch_mtf.cli import gin_paths
from switch_mtf.cli import pipeline
from switch_mtf.cli import progress as cli_progress
from switch_mtf.training import distill
from switch_mtf.workflows import demo

STUDENT = "distilled"
NO_INIT = "distilled_no_init"
INIT_ONLY = "dense_init_from_teacher"
OPTIONS_FILE = "distill_config.json"
REPORT_FILE = "distill_report.md"
VALIDATION_TAG = "neg_log_perplexity"
# Paper (neg. log perplexity) for the report: Table 6, Switch-Base -> T5-Base.
PAPER_TABLE6 = (
    ("T5-Base (dense, 223M)", "-1.636", "–"),
    ("Switch-Base (teacher, 3.8B)", "-1.444", "–"),
    ("distillation", "-1.631", "3%"),
    ("+ init. non-expert weights", "-1.598", "20%"),
    ("+ 0.75 mix of hard and soft loss", "-1.580", "29%"),
    ("init. non-expert weights, no distillation", "-1.639", "–"),
)


@dataclasses.dataclass(frozen=True)
class DistillOptions:
  """What the students' results depend on, beyond the demo's options."""
  fraction_soft: float = 0.25  # paper §4.2
  temperature: float = 1.0  # not given in the paper
  gin_params: Tuple[str, ...] = ()  # for the student-teacher runs
  ablations: bool = False

  def __post_init__(self):
    if not 0.0 < self.fraction_soft <= 1.0:
      raise ValueError(
          "--fraction_soft=%r must be in (0, 1]: it is the weight of the "
          "teacher's soft targets (the paper's 0.25); with 0 Mesh TF neither "
          "distils nor copies weights." % self.fraction_soft)
    if not self.temperature > 0:
      raise ValueError("--temperature=%r must be > 0." % self.temperature)


@dataclasses.dataclass(frozen=True)
class Row:
  label: str
  model_dir: str
  scope: str = ""  # variables of this model in a student-teacher checkpoint


def load_demo_config(run_dir: str,
                     pretrain_steps: Optional[int] = None) -> demo.DemoConfig:
  """The demo's saved options for run_dir, or the defaults for a new one.

  Raises:
    ValueError: pretrain_steps differs from the saved run's, or the saved
      options are not this version's.
  """
  path = os.path.join(run_dir, demo.CONFIG_FILE)
  if not os.path.exists(path):
    overrides = {} if pretrain_steps is None else {
        "pretrain_steps": pretrain_steps}
    return demo.DemoConfig(run_dir=run_dir, **overrides)
  with open(path) as f:
    saved = json.load(f)
  known = {field.name for field in dataclasses.fields(demo.DemoConfig)}
  unknown = sorted(set(saved) - known)
  if unknown:
    raise ValueError("%s has options this version does not know (%s); use a "
                     "new --run_dir." % (path, ", ".join(unknown)))
  config = demo.DemoConfig(run_dir=run_dir, **{
      k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
  if pretrain_steps is not None and pretrain_steps != config.pretrain_steps:
    raise ValueError(
        "%s pretrains for %d steps (%s); the student must train as long as "
        "the dense baseline. Drop --pretrain_steps, or pass a new --run_dir."
        % (run_dir, config.pretrain_steps, path))
  return config


def check_options(config: demo.DemoConfig, options: DistillOptions) -> None:
  """Saves the options on first use; refuses students made with others."""
  path = os.path.join(config.run_dir, OPTIONS_FILE)
  current = json.loads(json.dumps(dataclasses.asdict(options)))
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    changed = sorted(k for k in set(saved) | set(current)
                     if saved.get(k) != current.get(k) and k != "ablations")
    if changed:
      raise ValueError(
          "The students in %s were distilled with other options (%s). Rerun "
          "with the same options, delete %s and the model dirs %s, or pass a "
          "new --run_dir." % (
              config.run_dir, ", ".join("%s: %r there, %r now" % (
                  k, saved.get(k), current.get(k)) for k in changed), path,
              ", ".join((STUDENT, NO_INIT, INIT_ONLY))))
  os.makedirs(config.run_dir, exist_ok=True)
  temporary = path + ".tmp"
  with open(temporary, "w") as f:
    json.dump(current, f, indent=2, sort_keys=True)
  os.replace(temporary, path)


def teacher_checkpoint(config: demo.DemoConfig) -> str:
  """The teacher: the demo's Switch model at the end of pretraining."""
  return checkpoints.checkpoint_path(config.model_dir(demo.SWITCH),
                                     config.pretrain_steps)


def _student_flags(config: demo.DemoConfig, recipe: str,
                   bindings: Sequence[str]) -> List[str]:
  # The recipe after the teacher's model gin: it builds on its bindings.
  params = (
      "MIXTURE_NAME=%r" % config.task,
      "utils.run.train_steps=%d" % config.pretrain_steps,
      "utils.run.save_checkpoints_steps=%d" % config.checkpoint_every,
      "mesh_train_dataset_fn.seed=%d" % config.seed,
      *config.gin_params, *config.switch_gin_params,
      "%s=%r" % (distill.CHECKPOINT_MACRO, teacher_checkpoint(config)),
      *bindings)
  return ["--module_import=switch_mtf.tasks", "--gin_file=dataset.gin",
          "--gin_file=" + config.switch_gin,
          "--gin_file=runs/demo_pretrain.gin", "--gin_file=" + recipe,
          *gin_paths.guard_flags(config.guarded),
          *["--gin_param=" + p for p in params]]


def _eval_flags(config: demo.DemoConfig) -> List[str]:
  return ["--gin_file=perplexity_eval.gin",
          "--gin_param=utils.run.dataset_split='validation'",
          "--gin_param=utils.run.eval_checkpoint_step=%d"
          % config.pretrain_steps,
          "--gin_param=utils.run.perplexity_eval_steps=%d"
          % config.validation_batches]


def _train_and_eval(config: demo.DemoConfig, name: str, title: str,
                    recipe: str, bindings: Sequence[str],
                    eval_bindings: Sequence[str]) -> List[pipeline.Phase]:
  model_dir = config.model_dir(name)
  flags = _student_flags(config, recipe, bindings)
  return [
      pipeline.Phase(name="train " + title, kind=pipeline.TRAIN,
                     model_dir=model_dir, flags=flags,
                     target_step=config.pretrain_steps),
      pipeline.Phase(
          name="validation loss " + title, kind=pipeline.PERPLEXITY_EVAL,
          model_dir=model_dir,
          flags=flags + _eval_flags(config) + [
              "--gin_param=" + b for b in eval_bindings],
          target_step=config.pretrain_steps,
          result_dir=os.path.join(model_dir,
                                  demo.perplexity_eval_dirs(config.task)),
          result_tag=VALIDATION_TAG)]


def phases(config: demo.DemoConfig,
           options: DistillOptions) -> List[pipeline.Phase]:
  """The demo's pretraining and validation phases, then the students'."""
  teacher_and_dense = {config.model_dir(demo.SWITCH),
                       config.model_dir(demo.DENSE)}
  plan = [p for p in demo.phases(config) if p.model_dir in teacher_and_dense]
  mix = ("FRACTION_SOFT=%r" % options.fraction_soft,
         "TEMPERATURE=%r" % options.temperature) + options.gin_params
  # Evaluating the student alone: with no soft loss Mesh TF skips the teacher.
  student_only = ("FRACTION_SOFT=0.0",)
  plan += _train_and_eval(config, STUDENT, "distilled student",
                          "distill/pretrain.gin", mix, student_only)
  if options.ablations:
    plan += _train_and_eval(
        config, NO_INIT, "distilled student without init",
        "distill/pretrain.gin", mix + ("INIT_STUDENT_FROM_TEACHER=False",),
        student_only)
    plan += _train_and_eval(config, INIT_ONLY, "init only, no distillation",
                            "distill/init_only.gin", (), ())
  return plan


def validation_loss(model_dir: str, task: str, step: int) -> Optional[float]:
  """Validation cross-entropy per target token at `step`, if evaluated."""
  loss = None
  pattern = os.path.join(model_dir, demo.perplexity_eval_dirs(task))
  for directory in sorted(tf.io.gfile.glob(pattern)):
    scalars, _ = events.read_scalars(
        directory, keep_tag=lambda tag: tag == VALIDATION_TAG)
    for point in scalars.get(VALIDATION_TAG, []):
      if point.step == step:
        loss = -point.value
  return loss


def parameters(model_dir: str, scope: str = "") -> Optional[int]:
  """Weights of the model (under `scope/` if given) in the latest checkpoint."""
  step = checkpoints.latest_step(model_dir)
  if step is None:
    return None
  prefix = scope + "/" if scope else ""
  total = 0
  for name, shape in tf.train.list_variables(
      checkpoints.checkpoint_path(model_dir, step)):
    if name.startswith(prefix) and name != "global_step" and (
        "_slot_" not in name):
      count = 1
      for size in shape:
        count *= size
      total += count
  return total


def rows(config: demo.DemoConfig, options: DistillOptions) -> List[Row]:
  """The report's models, dense baseline first and teacher last."""
  dense = "dense from scratch (`%s`)" % config.dense_gin
  student = "distilled student (soft %.2f, T %g, init from teacher)" % (
      options.fraction_soft, options.temperature)
  result = [Row(dense, config.model_dir(demo.DENSE)),
            Row(student, config.model_dir(STUDENT), distill.STUDENT_SCOPE)]
  if options.ablations:
    result += [
        Row("ablation: distilled, no init", config.model_dir(NO_INIT),
            distill.STUDENT_SCOPE),
        Row("ablation: init from teacher, no distillation",
            config.model_dir(INIT_ONLY))]
  result.append(Row("teacher (`%s`)" % config.switch_gin,
                    config.model_dir(demo.SWITCH)))
  return result


def _percent(fraction: Optional[float]) -> str:
  return "–" if fraction is None else "%.0f%%" % (100 * fraction)


def results_table(losses: Dict[str, Optional[float]],
                  sizes: Dict[str, Optional[int]],
                  table_rows: Sequence[Row]) -> List[str]:
  """Markdown: loss, perplexity, difference to dense and gain kept."""
  dense, teacher = table_rows[0].label, table_rows[-1].label
  lines = ["| model | parameters | validation CE per token | perplexity | "
           "vs dense | teacher's gain kept |", "|---|---|---|---|---|---|"]
  for row in table_rows:
    loss = losses.get(row.label)
    kept = None
    if row.label not in (dense, teacher) and None not in (
        loss, losses.get(dense), losses.get(teacher)):
      kept = distill.fraction_of_gain_kept(losses[dense], loss,
                                           losses[teacher])
    has_loss = loss is not None
    lines.append("| %s | %s | %s | %s | %s | %s |" % (
        row.label,
        "{:,}".format(sizes[row.label]) if sizes.get(row.label) else "–",
        "%.3f" % loss if has_loss else "–",
        "%.1f" % math.exp(loss) if has_loss else "–",
        "%+.3f" % (loss - losses[dense]) if has_loss and row.label != dense
        and losses.get(dense) is not None else "–",
        _percent(kept)))
  return lines


def findings(losses: Dict[str, Optional[float]],
             sizes: Dict[str, Optional[int]],
             table_rows: Sequence[Row]) -> List[str]:
  """What the numbers say, including when the metric means nothing."""
  dense, student, teacher = (table_rows[0].label, table_rows[1].label,
                             table_rows[-1].label)
  if None in (losses.get(dense), losses.get(student), losses.get(teacher)):
    return ["- Some validation losses are missing; rerun to complete them."]
  lines = []
  gain = losses[dense] - losses[teacher]
  kept = distill.fraction_of_gain_kept(losses[dense], losses[student],
                                       losses[teacher])
  if kept is None:
    lines.append(
        "- The teacher is not better than the dense model here (%+.3f), so "
        "there is no gain to keep and the paper's metric is undefined. At "
        "this size repeated Switch runs differ by 0.02–0.2 in validation "
        "cross-entropy (anchor measurements)." % -gain)
  else:
    lines.append(
        "- Fraction of the teacher's gain kept, (dense − student) / (dense "
        "− teacher) in validation cross-entropy: %s (teacher's gain %.3f). "
        "The paper keeps 29%% (Table 6), 27–37%% (Table 7) and 30%% "
        "(Table 8)." % (_percent(kept), gain))
  if losses[student] < losses[teacher]:
    lines.append(
        "- The student beats its teacher (%+.3f). Its non-expert weights "
        "start where the teacher's pretraining left them, so they train "
        "twice as many steps as the dense baseline's: at this step count "
        "that head start is large, while the paper's long-trained baselines "
        "gain nothing from it (Table 6: init only −1.639 vs T5-Base −1.636)."
        % (losses[student] - losses[teacher]))
  ablation = {os.path.basename(r.model_dir): r.label for r in table_rows}
  init_only = losses.get(ablation.get(INIT_ONLY))
  no_init = losses.get(ablation.get(NO_INIT))
  if init_only is not None:
    lines.append(
        "- Init from the teacher alone: %+.3f vs dense; adding the soft "
        "targets (the distilled student) changes that by %+.3f."
        % (init_only - losses[dense], losses[student] - init_only))
  if no_init is not None:
    lines.append(
        "- Distillation without the init: %+.3f vs dense; the init "
        "changes that by %+.3f." % (no_init - losses[dense],
                                     losses[student] - no_init))
  if init_only is None and no_init is None:
    lines.append("- `--ablations` separates the two effects (Table 6).")
  if sizes.get(dense) and sizes.get(student) and (
      sizes[dense] != sizes[student]):
    lines.append(
        "- The student has %s parameters and the dense baseline %s: they "
        "are not the same architecture (check the demo's dense gin and "
        "overrides), so compare with care."
        % ("{:,}".format(sizes[student]), "{:,}".format(sizes[dense])))
  return lines


def build_report(config: demo.DemoConfig, options: DistillOptions,
                 outcomes: Sequence[pipeline.Outcome],
                 seconds: float) -> Tuple[str, List[str]]:
  """Writes distill_report.md into the run dir; returns its path and lines."""
  table_rows = rows(config, options)
  losses = {r.label: validation_loss(r.model_dir, config.task,
                                     config.pretrain_steps)
            for r in table_rows}
  sizes = {r.label: parameters(r.model_dir, r.scope) for r in table_rows}
  lines = [
      "# Distilling the demo's Switch model into a dense student", "",
      "Produced by `make distill-demo` (tools/distill_demo.py) in `%s`. "
      "Every model trains %d steps on `%s` with the same batches (data "
      "seed %d, runs/demo_pretrain.gin) and is evaluated on %d validation "
      "batches with Mesh TF's perplexity eval." % (
          config.run_dir, config.pretrain_steps, config.task, config.seed,
          config.validation_batches), "",
      "- Teacher: `%s` at step %d. Student: the teacher's stack with dense "
      "FFNs (distill/pretrain.gin), loss (1 − %.2f) · hard + T² · %.2f · "
      "soft with T = %g%s." % (
          teacher_checkpoint(config), config.pretrain_steps,
          options.fraction_soft, options.fraction_soft, options.temperature,
          "; gin %s" % list(options.gin_params) if options.gin_params
          else ""),
      "- This invocation took %s; phases: %s." % (
          cli_progress.format_duration(seconds), "; ".join(
              "%s %s" % (o.phase.name, "skipped (done before)" if o.skipped
                         else cli_progress.format_duration(o.seconds))
              for o in outcomes)), ""]
  lines += results_table(losses, sizes, table_rows)
  lines += [""] + findings(losses, sizes, table_rows)
  lines += ["", "Paper, Table 6 (Switch-Base → T5-Base, neg. log "
            "perplexity, % of the teacher's gain kept):", "",
            "| model | quality | gain kept |", "|---|---|---|"]
  lines += ["| %s | %s | %s |" % row for row in PAPER_TABLE6]
  lines += ["", "**Read with care.** One run per model of tiny models on "
            "CPU for few steps; see the demo report's caveats."]
  path = os.path.join(config.run_dir, REPORT_FILE)
  with open(path + ".tmp", "w") as f:
    f.write("\n".join(lines) + "\n")
  os.replace(path + ".tmp", path)
  return path, lines


def run(config: demo.DemoConfig, options: DistillOptions,
        out: Optional[IO[str]] = None,
        launcher: str = pipeline.LAUNCHER) -> str:
  """Runs (or resumes) the distillation demo; returns the report's path."""
  out = out or sys.stdout
  started = time.monotonic()
  with pipeline.RunDirLock(config.run_dir):
    demo.check_config(config)
    check_options(config, options)
    plan = phases(config, options)
    out.write("switch-mtf distillation demo in %s: %d phases (finished ones "
              "are skipped).\n" % (os.path.abspath(config.run_dir),
                                   len(plan)))
    out.flush()
    outcomes = pipeline.run_phases(plan, out, launcher)
    path, lines = build_report(config, options, outcomes,
                               time.monotonic() - started)
  out.write("\n" + "\n".join(lines) + "\n\nReport: %s\n"
            % os.path.abspath(path))
  out.flush()
  return path
