"""Runs the t5 CLI (through our launcher or the stock script) in a subprocess.

Shared by the tests that need a real `t5_mesh_transformer` run: they spawn the
same command a user types, from a directory outside the repo, so gin paths
and `--module_import` are resolved exactly as after an install.
"""

import os
import subprocess
import sys
from typing import List, Sequence

BIN_DIR = os.path.dirname(sys.executable)
LAUNCHER = os.path.join(BIN_DIR, "switch_mtf_transformer")
STOCK_CLI = os.path.join(BIN_DIR, "t5_mesh_transformer")

TINY_TRAIN_FLAGS = (
    "--module_import=switch_mtf.tasks",
    "--gin_file=dataset.gin",
    "--gin_file=models/switch_tiny.gin",
    "--gin_file=runs/cpu_tiny.gin",
    "--gin_param=MIXTURE_NAME='smoke_span_corruption'",
)


def run_cli(model_dir: str, flags: Sequence[str], cwd: str,
            executable: str = LAUNCHER,
            timeout: int = 600) -> subprocess.CompletedProcess:
  """Runs the CLI; returns the completed process (stdout+stderr merged)."""
  cmd: List[str] = [executable, "--model_dir=" + model_dir, *flags]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=timeout,
                        check=False)


def checkpoint_steps(model_dir: str) -> List[int]:
  """Steps of the complete checkpoints (an .index file) in model_dir."""
  steps = []
  for name in os.listdir(model_dir):
    if name.startswith("model.ckpt-") and name.endswith(".index"):
      steps.append(int(name[len("model.ckpt-"):-len(".index")]))
  return sorted(steps)
