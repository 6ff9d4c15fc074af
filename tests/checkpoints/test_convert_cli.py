"""tools/convert_checkpoint.py: every mode and flag documented; exit codes.

The tool is a thin wrapper over the library (tested in the other modules);
this checks its --help, a successful run and the one-line error exit.
"""

import argparse
import importlib.util
import os
import subprocess
import sys

import pytest

from switch_mtf.checkpoints import hf_names
from tests import repo_paths
from tests.checkpoints import hf_fixtures
from tests.checkpoints import test_bad_input

TOOL = os.path.join(repo_paths.REPO_DIR, "tools", "convert_checkpoint.py")


def _load_tool():
  spec = importlib.util.spec_from_file_location("convert_checkpoint", TOOL)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _subparsers(parser: argparse.ArgumentParser):
  # pylint: disable=protected-access
  for action in parser._actions:
    if isinstance(action, argparse._SubParsersAction):
      return action.choices
  return {}


def test_help_documents_every_mode_and_flag(capsys):
  tool = _load_tool()
  with pytest.raises(SystemExit):
    tool.parse_args(["--help"])
  top = capsys.readouterr().out
  parser = tool.build_parser()
  modes = _subparsers(parser)
  assert modes
  for mode, subparser in modes.items():
    assert mode in top
    help_text = subparser.format_help()
    for action in subparser._actions:  # pylint: disable=protected-access
      if action.dest == "help":
        continue
      assert action.help, (mode, action.dest)
      names = action.option_strings or [action.dest]
      assert any(name in help_text for name in names), (mode, names)


def test_run_prints_the_gin_flag_and_errors_exit_2(tmp_path, capsys):
  hf_dir = str(tmp_path / "hf")
  hf_fixtures.write_synthetic(hf_dir, test_bad_input.ARCH, hf_names.SWITCH,
                              test_bad_input.CONFIG)
  out_dir = str(tmp_path / "mtf")
  tool = _load_tool()
  assert tool.main(["hf-to-mtf", hf_dir, out_dir, "--dtype=float32"]) == 0
  printed = capsys.readouterr().out
  assert "--gin_file=%s" % os.path.join(out_dir, "model.gin") in printed
  assert tool.main(["hf-to-mtf", hf_dir, out_dir]) == 2
  error = capsys.readouterr().err
  assert error.count("\n") == 1 and "--overwrite" in error


def test_help_runs_as_a_script():
  proc = subprocess.run([sys.executable, TOOL, "hf-to-mtf", "--help"],
                        capture_output=True, text=True, check=False)
  assert proc.returncode == 0 and "--shard_mb" in proc.stdout
