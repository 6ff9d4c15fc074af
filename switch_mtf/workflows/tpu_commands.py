"""The exact `t5_mesh_transformer` commands of a Cloud TPU run.

Pretraining, fine-tuning from its last checkpoint (as t5's `finetune` does:
`init_checkpoint` plus a step count that continues the global step), and
decoding eval of the fine-tuned model with the task's metrics. The commands
are the T5 README's, with our `--module_import` and gin files; the slice
size is bound through `utils.tpu_mesh_shape.tpu_topology`, which the Mesh TF
defaults use for the mesh shape unless the layout gin sets one itself.
"""

import dataclasses
import shlex
import subprocess
import sys
from typing import IO, List, Optional, Sequence, Tuple

from switch_mtf.analysis import layout_check
from switch_mtf.cli import gin_paths

MODULE_IMPORT = "switch_mtf.tasks"
STOCK_CLI = "t5_mesh_transformer"


@dataclasses.dataclass(frozen=True)
class TpuJob:
  """What to run, where. Gin files are names on our/t5's gin path or paths."""
  tpu: str
  zone: str
  project: str
  model_dir: str  # gs://bucket/path: pretrain/ and finetune_<task>/ go here
  model_gin: str
  layout_gin: str
  mixture: str
  accelerator_type: str
  finetune_mixture: str = "super_glue_proportional"
  eval_mixture: str = ""  # default: finetune_mixture
  pretrain_steps: int = 100000
  finetune_steps: int = 10000
  pretrain_gins: Tuple[str, ...] = ()
  finetune_gins: Tuple[str, ...] = ()
  gin_params: Tuple[str, ...] = ()
  num_cores: Optional[int] = None  # default: from accelerator_type
  tfds_data_dir: str = ""
  executable: str = STOCK_CLI
  # Training through runs/reliable.gin: pre-flight checks, verified
  # checkpoints, seeded and resumable runs (False: Mesh TF's train_model).
  guarded: bool = True

  def __post_init__(self):
    if not self.model_dir.startswith("gs://"):
      raise ValueError(
          "--model_dir=%r must be a gs:// path: Cloud TPUs read and write "
          "checkpoints in Cloud Storage." % self.model_dir)
    for name in ("tpu", "zone", "project", "model_gin", "layout_gin",
                 "mixture", "accelerator_type"):
      if not getattr(self, name):
        raise ValueError("--%s is required." % name)
    if self.pretrain_steps < 1 or self.finetune_steps < 1:
      raise ValueError("Step counts must be >= 1 (pretrain %d, finetune %d)."
                       % (self.pretrain_steps, self.finetune_steps))

  @property
  def pretrain_dir(self) -> str:
    return self.model_dir.rstrip("/") + "/pretrain"

  @property
  def finetune_dir(self) -> str:
    return "%s/finetune_%s" % (self.model_dir.rstrip("/"),
                               self.finetune_mixture)

  @property
  def devices(self) -> int:
    return self.num_cores or layout_check.cores_of(self.accelerator_type)


@dataclasses.dataclass(frozen=True)
class Command:
  name: str
  argv: Tuple[str, ...]

  def shell(self) -> str:
    """Copy-pasteable, one flag per line."""
    return " \\\n    ".join(shell_quote(a) for a in self.argv)


def shell_quote(arg: str) -> str:
  """shlex.quote, but `--flag="a 'b'"` as in the T5 docs when that is safe."""
  quoted = shlex.quote(arg)
  if quoted == arg or any(c in arg for c in '"$`\\!'):
    return quoted
  flag, sep, value = arg.partition("=")
  if sep and flag.startswith("--") and shlex.quote(flag) == flag:
    return '%s="%s"' % (flag, value)
  return '"%s"' % arg


def _flags(gin_files: Sequence[str], params: Sequence[str]) -> List[str]:
  return (["--gin_file=" + g for g in gin_files] +
          ["--gin_param=" + p for p in params])


def model_gins(job: TpuJob) -> List[str]:
  return ["dataset.gin", job.model_gin, job.layout_gin]


def topology_params(job: TpuJob) -> List[str]:
  return ["utils.tpu_mesh_shape.tpu_topology=%r" % job.accelerator_type]


def _base(job: TpuJob, model_dir: str) -> List[str]:
  argv = [job.executable, "--tpu=" + job.tpu, "--gcp_project=" + job.project,
          "--tpu_zone=" + job.zone, "--model_dir=" + model_dir,
          "--module_import=" + MODULE_IMPORT]
  if job.tfds_data_dir:
    argv.append("--t5_tfds_data_dir=" + job.tfds_data_dir)
  return argv


def commands(job: TpuJob) -> List[Command]:
  """Pretrain, fine-tune, evaluate: in the order they must run."""
  total = job.pretrain_steps + job.finetune_steps
  guard = [gin_paths.GUARDED_RUN_GIN] if job.guarded else []
  pretrain = _base(job, job.pretrain_dir) + _flags(
      model_gins(job) + list(job.pretrain_gins) + guard,
      topology_params(job) + ["MIXTURE_NAME=%r" % job.mixture,
                              "utils.run.train_steps=%d" % job.pretrain_steps,
                              *job.gin_params])
  finetune_params = topology_params(job) + [
      "MIXTURE_NAME=%r" % job.finetune_mixture,
      "utils.run.init_checkpoint=%r" % (
          "%s/model.ckpt-%d" % (job.pretrain_dir, job.pretrain_steps)),
      "utils.run.train_steps=%d" % total, *job.gin_params]
  finetune = _base(job, job.finetune_dir) + _flags(
      model_gins(job) + list(job.finetune_gins) + guard, finetune_params)
  evaluate = _base(job, job.finetune_dir) + _flags(
      model_gins(job) + list(job.finetune_gins) + ["eval.gin"],
      topology_params(job) + [
          "MIXTURE_NAME=%r" % (job.eval_mixture or job.finetune_mixture),
          "utils.run.dataset_split='validation'",
          "utils.run.eval_checkpoint_step=%d" % total, *job.gin_params])
  return [Command("pretrain", tuple(pretrain)),
          Command("fine-tune", tuple(finetune)),
          Command("evaluate", tuple(evaluate))]


def check_layout(job: TpuJob) -> layout_check.Layout:
  """Raises LayoutError unless pretraining and fine-tuning fit the slice."""
  devices = job.devices
  params = topology_params(job) + list(job.gin_params)
  layout = layout_check.check(model_gins(job)[1:] + list(job.pretrain_gins),
                              params, devices)
  layout_check.check(model_gins(job)[1:] + list(job.finetune_gins), params,
                     devices)
  return layout


def print_commands(cmds: Sequence[Command],
                   out: Optional[IO[str]] = None) -> None:
  out = out or sys.stdout
  for command in cmds:
    out.write("# %s\n%s\n\n" % (command.name, command.shell()))


def run_commands(cmds: Sequence[Command],
                 out: Optional[IO[str]] = None) -> int:
  """Runs them in order; stops at the first failure; returns its code."""
  out = out or sys.stdout
  for command in cmds:
    out.write("==> %s\n%s\n" % (command.name, command.shell()))
    out.flush()
    code = subprocess.call(list(command.argv))
    if code:
      out.write("%s failed with exit code %d; later steps not run.\n"
                % (command.name, code))
      return code
  return 0
