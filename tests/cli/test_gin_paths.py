"""Our gin folder is found, and nothing the project creates shadows it.

gin reads "runs/x.gin" as a resource of a Python package `runs` whenever a
folder of that name is on sys.path (the repository root under pytest, the
working directory under `python -m`), and fails there; so neither the
default output folder nor a top-level folder may be named like a gin folder.
"""

import os

from switch_mtf.analysis import layout_check
from switch_mtf.bench import suite
from switch_mtf.cli import gin_paths
from switch_mtf.workflows import demo
from tests import repo_paths


def _gin_folders():
  root = gin_paths.gin_dir()
  return {name for name in os.listdir(root)
          if os.path.isdir(os.path.join(root, name))}


def test_gin_folder_holds_the_model_zoo():
  assert os.path.isfile(
      os.path.join(gin_paths.gin_dir(), "models", "switch_tiny.gin"))
  assert {"models", "layouts", "runs"} <= _gin_folders()


def test_no_repository_folder_is_named_like_a_gin_folder():
  top = {name for name in os.listdir(repo_paths.REPO_DIR)
         if os.path.isdir(os.path.join(repo_paths.REPO_DIR, name))}
  assert gin_paths.OUTPUT_ROOT not in _gin_folders()
  clashes = sorted(top & _gin_folders())
  assert not clashes, (
      "%s in the repository root shadow gin folders when gin parses "
      "in-process; move them (runs/ was the default output folder before "
      "output/)." % ", ".join(c + "/" for c in clashes))


def test_tools_write_under_the_output_root():
  for path in (demo.DEFAULT_RUN_DIR, suite.DEFAULT_WORK_DIR,
               repo_paths.load_tool("demo").parse_args([]).run_dir,
               repo_paths.load_tool("distill_demo").parse_args([]).run_dir):
    assert path.split(os.sep)[0] == gin_paths.OUTPUT_ROOT


def test_in_process_parsing_with_an_output_folder_on_sys_path(
    tmp_path, monkeypatch):
  # What `make demo` leaves in the repository root, which pytest puts on
  # sys.path.
  (tmp_path / gin_paths.OUTPUT_ROOT / "demo").mkdir(parents=True)
  monkeypatch.syspath_prepend(str(tmp_path))
  layout = layout_check.resolve(
      ["models/switch_tiny.gin", "runs/demo_finetune.gin"], [])
  assert [l.num_experts for l in layout.expert_layers] == [8, 8]
