"""tools/convert_checkpoint.py: every mode and flag documented; exit codes.

The tool is a thin wrapper over the library (tested in the other modules);
this checks its --help, a successful run and the one-line error exit, and
that it starts without our tasks' imports (seqio, t5: seconds of start-up
the conversion's speed target counts).
"""

import os
import subprocess
import sys

from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import vocabulary
from switch_mtf.tasks import vocab as task_vocab
from tests import repo_paths
from tests.checkpoints import hf_fixtures
from tests.checkpoints import test_bad_input
from tests.checkpoints import tool_help

TOOL = os.path.join(repo_paths.REPO_DIR, "tools", "convert_checkpoint.py")


def test_help_documents_every_mode_and_flag():
  parser = tool_help.load_tool("convert_checkpoint").build_parser()
  assert tool_help.undocumented(parser) == []
  for mode in ("hf-to-mtf", "t5x-to-mtf", "mtf-to-hf"):
    assert mode in parser.format_help()


def test_run_prints_the_gin_flag_and_errors_exit_2(tmp_path, capsys):
  hf_dir = str(tmp_path / "hf")
  hf_fixtures.write_synthetic(hf_dir, test_bad_input.ARCH, hf_names.SWITCH,
                              test_bad_input.CONFIG)
  out_dir = str(tmp_path / "mtf")
  tool = tool_help.load_tool("convert_checkpoint")
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


def test_the_tool_starts_without_seqio_t5_or_our_tasks():
  code = ("import sys\n"
          "from switch_mtf.checkpoints import export_hf, import_hf, "
          "import_t5x\n"
          "print(sorted(m for m in ('seqio', 't5', 'switch_mtf.tasks') "
          "if m in sys.modules))")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, check=True, cwd=repo_paths.REPO_DIR)
  assert proc.stdout.strip() == "[]"
  # The sentinel count the conversions use without importing the tasks.
  assert vocabulary.EXTRA_IDS == task_vocab.EXTRA_IDS
