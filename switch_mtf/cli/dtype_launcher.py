"""The t5 CLI with a chosen activation dtype on CPU (paper Table 2 runs).

`mesh_transformer_main` without `--tpu` binds
`utils.get_variable_dtype.activation_dtype = "float32"` just before it calls
`utils.run`, overriding any gin file, so the stock command can never train
in bfloat16 off a TPU. This entry point runs the very same CLI (same flags,
same gin, through the torch-free launcher) and re-binds only that one
parameter after the CLI's override, at the moment `utils.run` is called:

  python -m switch_mtf.cli.dtype_launcher --activation_dtype=bfloat16 \
      --model_dir=... --gin_file=... (every switch_mtf_transformer flag)

Variables stay float32 in memory (slice dtype, as the CLI sets) and
bfloat16 in checkpoints (master dtype, Mesh TF's default). The Switch router
keeps its float32 computation (selective precision) unless the run also
binds `Switch.router_dtype = 'bfloat16'` (bfloat16 everywhere).
"""

import functools
import sys
from typing import List

import gin
from mesh_tensorflow.transformer import utils

from switch_mtf.cli import launcher

FLAG = "--activation_dtype="
DTYPES = ("float32", "bfloat16")


def split_dtype_flag(argv: List[str]) -> (str, List[str]):
  """Returns (dtype, argv without the flag); float32 if absent."""
  dtype, rest = "float32", []
  for arg in argv:
    if arg.startswith(FLAG):
      dtype = arg[len(FLAG):]
    else:
      rest.append(arg)
  if dtype not in DTYPES:
    raise SystemExit("%s%s is not supported; use one of %s."
                     % (FLAG, dtype, ", ".join(DTYPES)))
  return dtype, rest


def _run_with_dtype(dtype: str):
  cli_run = utils.run

  # The wrapper keeps utils.run's signature: the guarded run reads the
  # defaults of its parameters (gin_config.run_arg), e.g. mesh_devices.
  @functools.wraps(cli_run)
  def run(*args, **kwargs):
    with gin.unlock_config():
      gin.bind_parameter("utils.get_variable_dtype.activation_dtype", dtype)
    return cli_run(*args, **kwargs)
  return run


def main() -> None:
  dtype, sys.argv = split_dtype_flag(sys.argv)
  utils.run = _run_with_dtype(dtype)
  launcher.console_entry_point()


if __name__ == "__main__":
  main()
