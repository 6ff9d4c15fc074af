"""Training and evaluation runs through the real CLI, resumable.

Each run is one `switch_mtf_transformer` training process (the command a
user types, with our gin files) followed by one evaluation process over all
of its checkpoints: validation perplexity for pretraining, decoded accuracy
(the task's metric) for fine-tuning. What the claims need is parsed from the
logs and kept in the run store; the model directory is scratch (checkpoints
are not results). A run with an entry in the store is skipped, and a run
interrupted mid-way restarts from its model directory's last checkpoint.
"""

import dataclasses
import math
import os
import shlex
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from switch_mtf.bench.common import stats
from switch_mtf.cli import gin_paths
from switch_mtf.cli import progress as cli_progress

PRETRAIN_MIXTURE = "wiki_span_corruption"
# Validation: 21 batches x 32 sequences = 672 examples (the anchor's).
PERPLEXITY_EVAL_STEPS = 21
DIVERGED_MARKERS = ("NaN loss during training",)
# The distillation gin files' macro for the teacher's checkpoint
# (training/distill.py's CHECKPOINT_MACRO).
TEACHER_MACRO = "TEACHER_CHECKPOINT"


@dataclasses.dataclass(frozen=True)
class Run:
  """One CLI training run (+ its evaluation)."""
  name: str
  model_gin: str
  gin_params: Tuple[str, ...] = ()
  seed: int = 0
  train_steps: int = 1500
  recipe_gin: str = "bench/pretrain_recipe.gin"
  mixture: str = PRETRAIN_MIXTURE
  activation_dtype: str = "float32"
  checkpoint_every: int = 250
  init_from: Optional[str] = None  # name of the pretraining run to start from
  eval_kind: str = "perplexity"  # "decode" (the task's metrics) or "none"
  # Distillation: the planned run whose final checkpoint teaches this one.
  # Its model gin comes before this run's (a distillation gin building on
  # it), its gin params before this run's, and TEACHER_CHECKPOINT names
  # its final checkpoint.
  teacher: Optional[str] = None
  eval_gin_params: Tuple[str, ...] = ()  # bindings of the evaluation only

  def as_dict(self) -> Dict[str, Any]:
    """The config as stored; fields added later are left out at their default.

    A stored entry whose config differs from the plan's is run again, so a
    new field must not change the stored configs of the runs without it.
    """
    out = dataclasses.asdict(self)
    for name in _LATER_FIELDS:
      if out[name] == _DEFAULTS[name]:
        del out[name]
    return out


# Fields added after results were stored (see Run.as_dict).
_LATER_FIELDS = ("teacher", "eval_gin_params")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Run)}


class Launcher:
  """Builds and runs the CLI commands of runs under a scratch directory."""

  def __init__(self, work_dir: str, log: Callable[[str], None] = print,
               env: Optional[Dict[str, str]] = None, guarded: bool = True,
               perplexity_eval_steps: int = PERPLEXITY_EVAL_STEPS):
    self.work_dir = work_dir
    self.perplexity_eval_steps = perplexity_eval_steps
    self.guarded = guarded  # runs/reliable.gin after the run's gin files
    self.log = log
    self.env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="1",
                    CUDA_VISIBLE_DEVICES="", **(env or {}))

  def model_dir(self, run: Run) -> str:
    return os.path.join(self.work_dir, run.name)

  def final_checkpoint(self, run: Run) -> str:
    """A run's last checkpoint, where its students and fine-tunings start."""
    return os.path.join(self.model_dir(run),
                        "model.ckpt-%d" % run.train_steps)

  def has_final_checkpoint(self, run: Run) -> bool:
    """Whether that checkpoint is here (model dirs are scratch)."""
    return os.path.exists(self.final_checkpoint(run) + ".index")

  def base_flags(self, run: Run, init_run: Optional[Run] = None,
                 init_steps: int = 0,
                 teacher: Optional[Run] = None) -> List[str]:
    if (teacher is None) != (run.teacher is None) or (
        teacher is not None and teacher.name != run.teacher):
      raise ValueError("run %s names teacher %r but was given %r" % (
          run.name, run.teacher, teacher and teacher.name))
    flags = [
        "--model_dir=" + self.model_dir(run),
        "--module_import=switch_mtf.tasks",
        "--gin_file=dataset.gin",
        *(["--gin_file=" + teacher.model_gin] if teacher else []),
        "--gin_file=" + run.model_gin,
        "--gin_file=" + run.recipe_gin,
        *gin_paths.guard_flags(self.guarded),
        "--gin_param=MIXTURE_NAME = '%s'" % run.mixture,
        "--gin_param=mesh_train_dataset_fn.seed = %d" % (1000 + run.seed),
        "--gin_param=utils.run.train_steps = %d" % (init_steps
                                                    + run.train_steps),
        "--gin_param=utils.run.save_checkpoints_steps = %d"
        % run.checkpoint_every,
    ]
    if init_run is not None:
      flags.append("--gin_param=utils.run.init_checkpoint = '%s'"
                   % os.path.join(self.model_dir(init_run),
                                  "model.ckpt-%d" % init_steps))
    if teacher is not None:
      flags += ["--gin_param=" + p for p in teacher.gin_params]
      flags.append("--gin_param=%s = '%s'" % (
          TEACHER_MACRO, self.final_checkpoint(teacher)))
    flags += ["--gin_param=" + p for p in run.gin_params]
    return flags

  def executable(self, run: Run) -> List[str]:
    if run.activation_dtype == "float32":
      return [os.path.join(os.path.dirname(sys.executable),
                           "switch_mtf_transformer")]
    return [sys.executable, "-m", "switch_mtf.cli.dtype_launcher",
            "--activation_dtype=" + run.activation_dtype]

  def train_command(self, run: Run, init_run: Optional[Run] = None,
                    init_steps: int = 0,
                    teacher: Optional[Run] = None) -> List[str]:
    return self.executable(run) + self.base_flags(run, init_run, init_steps,
                                                  teacher)

  def eval_command(self, run: Run, init_run: Optional[Run] = None,
                   init_steps: int = 0,
                   teacher: Optional[Run] = None) -> List[str]:
    flags = self.base_flags(run, init_run, init_steps, teacher)
    if run.eval_kind == "perplexity":
      flags += [
          "--gin_file=perplexity_eval.gin",
          "--gin_param=utils.run.dataset_split = 'validation'",
          "--gin_param=utils.run.perplexity_eval_steps = %d"
          % self.perplexity_eval_steps,
      ]
    else:
      flags += ["--gin_file=bench/decode_eval.gin"]
    flags.append("--gin_param=utils.run.eval_checkpoint_step = 'all'")
    flags += ["--gin_param=" + p for p in run.eval_gin_params]
    return self.executable(run) + flags

  def execute(self, command: Sequence[str], log_path: str) -> Tuple[int, float]:
    """Runs a command, output to log_path; returns (exit code, seconds)."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    start = time.time()
    with open(log_path, "w") as log_file:
      log_file.write("$ %s\n" % " ".join(shlex.quote(c) for c in command))
      log_file.flush()
      code = subprocess.call(list(command), stdout=log_file,
                             stderr=subprocess.STDOUT, env=self.env,
                             cwd=self.work_dir)
    return code, time.time() - start


def parse_train_logs(texts: Sequence[str]) -> Dict[str, Any]:
  """Per-step total loss and whether it blew up, from the CLI's logs.

  One text per training process, in order (a resumed run has several);
  cli_progress.LogParser numbers the printed steps, and a resumed process's
  re-done steps replace the lost ones.
  """
  losses: Dict[int, float] = {}
  for text in texts:
    parser = cli_progress.LogParser()
    for line in text.splitlines():
      event = parser.feed(line)
      if isinstance(event, cli_progress.StepLoss):
        losses[event.step] = event.loss
  diverged = any(marker in text for text in texts
                 for marker in DIVERGED_MARKERS) or any(
                     not math.isfinite(v) for v in losses.values())
  return {"losses": dict(sorted(losses.items())), "diverged": diverged}


def parse_eval_log(text: str) -> Dict[int, Dict[str, float]]:
  """step -> metrics, from perplexity dicts and decoded-metric lines."""
  out: Dict[int, Dict[str, float]] = {}
  for line in text.splitlines():
    event = cli_progress.parse_line(line)
    if isinstance(event, cli_progress.EvalResults):
      out.setdefault(event.step, {}).update(event.values)
    elif isinstance(event, cli_progress.EvalMetric):
      out.setdefault(event.step, {})[event.tag] = event.value
  return out


def curve(losses: Dict[int, float], window: int,
          every: int) -> List[Tuple[int, float]]:
  """(step, mean of the `window` steps ending there) every `every` steps."""
  means = stats.moving_mean(sorted(losses.items()), window)
  return [(s, round(v, 5)) for s, v in means if s % every == 0]
