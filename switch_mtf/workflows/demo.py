"""`make demo`: Switch vs dense pretraining, fine-tuning, evaluation, report.

The plan is a list of pipeline phases, each a real `switch_mtf_transformer`
(= `t5_mesh_transformer`) run with our gin files:

1. pretrain the Switch model and 2. the FLOP-matched dense model, same
   steps, batch and data seed, on the embedded Wikipedia span corruption;
3.-4. their validation cross-entropy (perplexity eval, eval capacity);
5. fine-tune the Switch model on an embedded SuperGLUE task with expert
   dropout (runs/demo_finetune.gin), initialised from its last checkpoint;
6. decode the task's validation split and score it with its official metric.

Then report.py writes report.md and the plots into the run directory.
The options are saved in the run dir: a rerun with the same options resumes
(pipeline.py); one with other options is refused instead of mixing runs.
"""

import dataclasses
import json
import os
import sys
import time
from typing import IO, List, Optional, Sequence, Tuple

from switch_mtf.cli import gin_paths
from switch_mtf.cli import pipeline
from switch_mtf.cli import progress as cli_progress

# `make demo`'s run dir, which `make distill-demo` starts from.
DEFAULT_RUN_DIR = os.path.join(gin_paths.OUTPUT_ROOT, "demo")
CONFIG_FILE = "demo_config.json"
# Time, resume step and load of every phase run, over all invocations.
TIMING_FILE = "demo_timing.json"
SWITCH, DENSE, FINETUNE = "switch", "dense", "switch_finetune"


@dataclasses.dataclass(frozen=True)
class DemoConfig:
  """Everything that determines the demo's results (saved in the run dir)."""
  run_dir: str
  pretrain_steps: int = 600
  finetune_steps: int = 150
  task: str = "wiki_span_corruption"
  finetune_task: str = "local_super_glue_cb"
  eval_task: str = ""  # default: finetune_task
  switch_gin: str = "models/switch_tiny.gin"
  dense_gin: str = "models/t5_tiny.gin"
  gin_params: Tuple[str, ...] = ()
  switch_gin_params: Tuple[str, ...] = ()
  dense_gin_params: Tuple[str, ...] = ()
  finetune_gin_params: Tuple[str, ...] = ()
  expert_dropout_rate: float = 0.4
  checkpoint_every: int = 200
  finetune_checkpoint_every: int = 100
  validation_batches: int = 20
  seed: int = 1234
  # runs/reliable.gin on every phase: pre-flight checks, seeded init and
  # random streams, a resumed phase continuing its data (False: Mesh TF's
  # plain train_model).
  guarded: bool = True

  def __post_init__(self):
    for name in ("pretrain_steps", "finetune_steps", "checkpoint_every",
                 "finetune_checkpoint_every", "validation_batches"):
      if getattr(self, name) < 1:
        raise ValueError("--%s=%d must be >= 1." % (name,
                                                     getattr(self, name)))
    if not 0.0 <= self.expert_dropout_rate < 1.0:
      raise ValueError("--expert_dropout_rate=%r must be in [0, 1)."
                       % self.expert_dropout_rate)

  @property
  def evaluated_task(self) -> str:
    return self.eval_task or self.finetune_task

  def model_dir(self, name: str) -> str:
    return os.path.join(self.run_dir, name)


def _params(*bindings: str) -> List[str]:
  return ["--gin_param=" + b for b in bindings]


def _model_flags(model_gin: str, run_gin: str, mixture: str,
                 params: Sequence[str], guarded: bool) -> List[str]:
  return ["--module_import=switch_mtf.tasks", "--gin_file=dataset.gin",
          "--gin_file=" + model_gin, "--gin_file=" + run_gin,
          *gin_paths.guard_flags(guarded),
          *_params("MIXTURE_NAME=%r" % mixture), *_params(*params)]


def perplexity_eval_dirs(task: str) -> str:
  """Glob of the dirs Mesh TF's perplexity eval writes to (utils.run names
  them `eval_<task>_<split>_<number of examples>`)."""
  return "eval_%s_validation_*" % task


def phases(config: DemoConfig) -> List[pipeline.Phase]:
  """The demo's CLI runs, in order."""
  pretrain_params = ("utils.run.train_steps=%d" % config.pretrain_steps,
                     "utils.run.save_checkpoints_steps=%d"
                     % config.checkpoint_every,
                     "mesh_train_dataset_fn.seed=%d" % config.seed)
  models = (
      (SWITCH, config.switch_gin,
       config.gin_params + config.switch_gin_params),
      (DENSE, config.dense_gin, config.gin_params + config.dense_gin_params))
  plan = []
  for name, gin_file, params in models:
    plan.append(pipeline.Phase(
        name="pretrain " + name, kind=pipeline.TRAIN,
        model_dir=config.model_dir(name),
        flags=_model_flags(gin_file, "runs/demo_pretrain.gin", config.task,
                           pretrain_params + tuple(params), config.guarded),
        target_step=config.pretrain_steps))
  for name, gin_file, params in models:
    model_dir = config.model_dir(name)
    plan.append(pipeline.Phase(
        name="validation loss " + name, kind=pipeline.PERPLEXITY_EVAL,
        model_dir=model_dir,
        flags=_model_flags(gin_file, "runs/demo_pretrain.gin", config.task,
                           pretrain_params + tuple(params),
                           config.guarded) + [
                               "--gin_file=perplexity_eval.gin",
                               *_params(
                                   "utils.run.dataset_split='validation'",
                                   "utils.run.eval_checkpoint_step=%d"
                                   % config.pretrain_steps,
                                   "utils.run.perplexity_eval_steps=%d"
                                   % config.validation_batches)],
        target_step=config.pretrain_steps,
        result_dir=os.path.join(model_dir, perplexity_eval_dirs(config.task)),
        result_tag="neg_log_perplexity"))
  finetune_dir = config.model_dir(FINETUNE)
  total_steps = config.pretrain_steps + config.finetune_steps
  finetune_params = (
      config.gin_params + config.switch_gin_params + (
          "utils.run.init_checkpoint=%r" % os.path.join(
              config.model_dir(SWITCH),
              "model.ckpt-%d" % config.pretrain_steps),
          # Fine-tuning continues the global step (as t5's finetune does).
          "utils.run.train_steps=%d" % total_steps,
          "utils.run.save_checkpoints_steps=%d"
          % config.finetune_checkpoint_every,
          "mesh_train_dataset_fn.seed=%d" % config.seed,
          "Switch.expert_dropout_rate=%r" % config.expert_dropout_rate) +
      config.finetune_gin_params)
  plan.append(pipeline.Phase(
      name="fine-tune switch on " + config.finetune_task,
      kind=pipeline.TRAIN, model_dir=finetune_dir,
      flags=_model_flags(config.switch_gin, "runs/demo_finetune.gin",
                         config.finetune_task, finetune_params,
                         config.guarded),
      target_step=total_steps))
  plan.append(pipeline.Phase(
      name="evaluate on %s validation" % config.evaluated_task,
      kind=pipeline.DECODE_EVAL, model_dir=finetune_dir,
      flags=_model_flags(config.switch_gin, "runs/demo_finetune.gin",
                         config.evaluated_task, finetune_params,
                         config.guarded) + [
                             "--gin_file=runs/demo_eval.gin",
                             *_params("utils.run.eval_checkpoint_step=%d"
                                      % total_steps)],
      target_step=total_steps,
      result_dir=os.path.join(finetune_dir, "validation_eval"),
      result_tag="eval/%s/" % config.evaluated_task))
  return plan


def check_config(config: DemoConfig) -> None:
  """Saves the options on first use; refuses a run dir made with others."""
  os.makedirs(config.run_dir, exist_ok=True)
  path = os.path.join(config.run_dir, CONFIG_FILE)
  current = dataclasses.asdict(config)
  current.pop("run_dir")
  current = json.loads(json.dumps(current))  # tuples -> lists
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    changed = sorted(k for k in set(saved) | set(current)
                     if saved.get(k) != current.get(k))
    if changed:
      raise ValueError(
          "%s holds a demo run made with other options (%s). Rerun with "
          "the same options to resume it, or pass a new --run_dir." % (
              config.run_dir, ", ".join(
                  "%s: %r there, %r now" % (k, saved.get(k), current.get(k))
                  for k in changed)))
    return
  temporary = path + ".tmp"
  with open(temporary, "w") as f:
    json.dump(current, f, indent=2, sort_keys=True)
  os.replace(temporary, path)


def record_outcome(run_dir: str, outcome: pipeline.Outcome) -> None:
  """Appends a phase that ran (not a skipped one) to the timing file."""
  if outcome.skipped:
    return
  path = os.path.join(run_dir, TIMING_FILE)
  runs = load_timing(run_dir)
  runs.append({"phase": outcome.phase.name, "seconds": outcome.seconds,
               "resumed_from": outcome.resumed_from,
               "load_average": outcome.load_average,
               "cpu_seconds": outcome.cpu_seconds,
               "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
  temporary = path + ".tmp"
  with open(temporary, "w") as f:
    json.dump(runs, f, indent=1)
  os.replace(temporary, path)


def load_timing(run_dir: str) -> List[dict]:
  path = os.path.join(run_dir, TIMING_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return json.load(f)


def phase_times(plan: Sequence[pipeline.Phase],
                 timing: Sequence[dict]) -> Tuple[float, List[str]]:
  """Total seconds, and one description per phase, over all invocations."""
  total, parts = 0.0, []
  for phase in plan:
    runs = [r for r in timing if r["phase"] == phase.name]
    seconds = sum(r["seconds"] for r in runs)
    total += seconds
    loads = [(r["load_average"], r["seconds"]) for r in runs
             if r["load_average"] is not None]
    notes = ["resumed from step %d" % r["resumed_from"] for r in runs
             if r["resumed_from"]]
    cpu = [r.get("cpu_seconds") for r in runs]
    if cpu and None not in cpu:
      notes.append("CPU time %s" % cli_progress.format_duration(sum(cpu)))
    if loads:
      notes.append("load %.1f" % (sum(l * t for l, t in loads) /
                                  max(sum(t for _, t in loads), 1e-9)))
    parts.append("%s %s%s" % (phase.name,
                              cli_progress.format_duration(seconds),
                              " (%s)" % ", ".join(notes) if notes else ""))
  return total, parts


def _intro(config: DemoConfig) -> List[str]:
  lines = [
      "Produced by `make demo` (tools/demo.py): every phase is a "
      "`switch_mtf_transformer` (= `t5_mesh_transformer`) run with our gin "
      "files; the commands are listed at the end.", "",
      "- Pretraining: `%s` vs `%s`, %d steps each with the same batches "
      "(runs/demo_pretrain.gin: 32 sequences of 128 input / 32 target "
      "tokens, unless overridden below), data seed %d, task `%s`."
      % (config.switch_gin, config.dense_gin, config.pretrain_steps,
         config.seed, config.task),
      "- Fine-tuning: the Switch model, %d steps on `%s` with dropout 0.1 "
      "and expert dropout %.2f; evaluated on `%s` validation."
      % (config.finetune_steps, config.finetune_task,
         config.expert_dropout_rate, config.evaluated_task)]
  if config.gin_params or config.switch_gin_params or config.dense_gin_params:
    lines.append("- Gin overrides: both %s; switch %s; dense %s." % (
        list(config.gin_params), list(config.switch_gin_params),
        list(config.dense_gin_params)))
  total, parts = phase_times(phases(config), load_timing(config.run_dir))
  cores = os.cpu_count() or 0
  lines.append(
      "- The phases took %s on %d cores (all invocations; with each CLI "
      "process's CPU time and the machine's mean load average while it "
      "ran: above %d, other processes shared the CPU and the times are "
      "longer than a solo run's): %s." % (
          cli_progress.format_duration(total), cores, cores,
          "; ".join(parts)))
  lines += [
      "",
      "**Read with care.** This is a CPU run of small models (by default "
      "switch_tiny and t5_tiny: d_model 128, 2+2 layers) for few steps, one "
      "run per model. The "
      "paper's gains come from far larger models and step counts. At this "
      "size, repeated runs of the same Switch configuration differ by "
      "0.02–0.2 in validation cross-entropy (docs: anchor measurements), so "
      "a difference smaller than that between Switch and dense here is not "
      "evidence either way. What the run does show is the mechanism: "
      "routing, expert load, dropped tokens and the cost per step."]
  return lines


def build_report(config: DemoConfig):
  """Collects the three runs and writes report.md into the run dir."""
  from switch_mtf.workflows import report  # pylint: disable=g-import-not-at-top
  from switch_mtf.workflows import run_data  # pylint: disable=g-import-not-at-top
  runs = [run_data.collect(config.model_dir(SWITCH), SWITCH),
          run_data.collect(config.model_dir(DENSE), DENSE),
          run_data.collect(config.model_dir(FINETUNE),
                           "switch fine-tuned")]
  return report.write_report(
      runs, config.run_dir, "switch-mtf demo: Switch vs dense on CPU",
      compare=report.Comparison(SWITCH, DENSE),
      intro=_intro(config),
      pretraining=[SWITCH, DENSE])


def tensorboard_command(run_dir: str) -> str:
  tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
  return "%s --logdir %s" % (tensorboard, os.path.abspath(run_dir))


def run(config: DemoConfig, out: Optional[IO[str]] = None,
        launcher: str = pipeline.LAUNCHER) -> str:
  """Runs (or resumes) the demo; returns the report's path."""
  out = out or sys.stdout
  started = time.monotonic()
  with pipeline.RunDirLock(config.run_dir):
    check_config(config)
    plan = phases(config)
    out.write("switch-mtf demo in %s: %d phases. TensorBoard: %s\n"
              % (os.path.abspath(config.run_dir), len(plan),
                 tensorboard_command(config.run_dir)))
    out.flush()
    outcomes = pipeline.run_phases(
        plan, out, launcher,
        on_outcome=lambda o: record_outcome(config.run_dir, o))
    out.write("Writing the report...\n")
    out.flush()
    result = build_report(config)
  ran = [o for o in outcomes if o.load_average is not None]
  load = (" (mean load average %.1f on %d cores)" % (
      sum(o.load_average * o.seconds for o in ran) /
      max(sum(o.seconds for o in ran), 1e-9), os.cpu_count() or 0)
          if ran else "")
  out.write("\nDone in %s%s.\nReport: %s (plots beside it: %s)\n"
            "TensorBoard (event files of every run): %s\n" % (
                cli_progress.format_duration(time.monotonic() - started), load,
                os.path.abspath(result.path), ", ".join(result.plots),
                tensorboard_command(config.run_dir)))
  out.flush()
  return result.path
