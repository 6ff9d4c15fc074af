"""tools/sweep.py: grid parsing and expansion, per-point model dirs and
configs, local runs through the real CLI, TPU command printing."""

import dataclasses
import io
import os
import shlex

import pytest

from switch_mtf.workflows import sweep
from tests import repo_paths

TINY = ("d_model=32", "d_ff=64", "num_heads=2", "d_kv=16",
        "utils.run.batch_size=('sequences_per_batch', 8)")


@pytest.mark.parametrize("text,values", [
    ("1.0,1.25", ["1.0", "1.25"]),
    ("('tokens', 1024), ('sequences', 8)", ["('tokens', 1024)",
                                            "('sequences', 8)"]),
    ("'a,b',\"c\",[1, 2]", ["'a,b'", '"c"', "[1, 2]"]),
    ("relu", ["relu"])])
def test_split_values_respects_quotes_and_brackets(text, values):
  assert sweep.split_values(text) == values


@pytest.mark.parametrize("specs,message", [
    (["Switch.num_experts"], "is not 'binding=value1,value2"),
    (["Switch.num_experts="], "is not 'binding=value1,value2"),
    (["Switch.num_experts=4,,8"], "empty value"),
    (["Switch.num_experts=4,4"], "repeats a value"),
    (["a=1", "a=2"], "appears in two --grid flags"),
    (["a=(1,2"], "Unbalanced"),
    ([], "at least one --grid")])
def test_bad_grids_are_refused(specs, message):
  with pytest.raises(ValueError, match=message):
    sweep.parse_grid(specs)


def test_grid_expands_to_every_combination_with_readable_names():
  points = sweep.expand(sweep.parse_grid([
      "Switch.capacity_factor_train=1.0,1.25", "Switch.num_experts=4,8"]))
  assert [p.gin_params for p in points] == [
      ["Switch.capacity_factor_train=1.0", "Switch.num_experts=4"],
      ["Switch.capacity_factor_train=1.0", "Switch.num_experts=8"],
      ["Switch.capacity_factor_train=1.25", "Switch.num_experts=4"],
      ["Switch.capacity_factor_train=1.25", "Switch.num_experts=8"]]
  assert [p.name for p in points] == [
      "p00_capacity_factor_train-1.0_num_experts-4",
      "p01_capacity_factor_train-1.0_num_experts-8",
      "p02_capacity_factor_train-1.25_num_experts-4",
      "p03_capacity_factor_train-1.25_num_experts-8"]


def test_names_keep_full_keys_when_short_ones_clash():
  points = sweep.expand(sweep.parse_grid([
      "encoder/Switch.num_experts=4", "decoder/Switch.num_experts=8"]))
  assert points[0].name == (
      "p00_encoder_Switch.num_experts-4_decoder_Switch.num_experts-8")


def _load_tool():
  return repo_paths.load_tool("sweep")


def test_tpu_mode_prints_one_checked_command_per_point(capsys):
  flags = ["--sweep_dir=gs://bucket/sweep", "--tpu=t", "--zone=z",
           "--project=p", "--accelerator_type=v3-8",
           "--model_gin=models/switch_tiny.gin",
           "--layout_gin=runs/demo_pretrain.gin", "--train_steps=1000",
           "--gin_param=utils.run.mesh_shape='batch:8'",
           "--grid=Switch.num_experts=8,16"]
  tool = _load_tool()
  assert tool.main(flags) == 0
  out = capsys.readouterr().out
  blocks = [b for b in out.split("\n\n") if "t5_mesh_transformer" in b]
  assert len(blocks) == 2
  for block, experts in zip(blocks, (8, 16)):
    argv = shlex.split(block.split("\n", 1)[1])
    assert "--gin_param=Switch.num_experts=%d" % experts in argv
    assert "--gin_param=utils.run.train_steps=1000" in argv
    assert "--gin_file=runs/reliable.gin" in argv
    assert ("--model_dir=gs://bucket/sweep/p%02d_num_experts-%d/pretrain"
            % (experts // 16, experts)) in argv
  # 12 experts do not divide over the 8-way batch dimension they are
  # split over: refused before any command is printed.
  assert tool.main(flags[:-1] + ["--grid=Switch.num_experts=8,12"]) == 2
  captured = capsys.readouterr()
  assert "num_experts=12 is not divisible" in captured.err
  assert "t5_mesh_transformer" not in captured.out


# Slow: trains every point of a small sweep; the fast tests check the
# commands and dirs the sweep plans.
@pytest.mark.slow
def test_local_sweep_runs_each_point_in_its_own_dir(tmp_path):
  sweep_dir = str(tmp_path / "sweep")
  points = sweep.expand(sweep.parse_grid(
      ["Switch.capacity_factor_train=1.0,2.0"]))
  local = sweep.LocalSweep(
      sweep_dir=sweep_dir, points=tuple(points),
      gin_files=("dataset.gin", "models/switch_tiny.gin",
                 "runs/demo_pretrain.gin"),
      mixture="wiki_span_corruption", train_steps=2,
      gin_params=TINY + ("utils.run.save_checkpoints_steps=2",))
  # Right after the sweep's gin files (runs/reliable.gin goes last).
  assert local.base_flags()[1 + len(local.gin_files)] == (
      "--gin_file=runs/reliable.gin")
  assert "--gin_file=runs/reliable.gin" not in dataclasses.replace(
      local, guarded=False).base_flags()
  out = io.StringIO()
  table = local.run(out=out)
  assert "[1/2 train p00_capacity_factor_train-1.0]" in out.getvalue()
  for point, value in zip(points, ("1.0", "2.0")):
    model_dir = local.model_dir(point)
    point_gin = open(os.path.join(model_dir, sweep.POINT_CONFIG)).read()
    assert "Switch.capacity_factor_train = %s" % value in point_gin
    operative = open(os.path.join(model_dir, "operative_config.gin")).read()
    assert "Switch.capacity_factor_train = %s" % value in operative
    assert "d_model = 32" in operative
  rows = [l for l in table.splitlines() if l.startswith("| p0")]
  assert [r.split(" | ")[1:3] for r in rows] == [["1.0", "2"], ["2.0", "2"]]
  assert open(os.path.join(sweep_dir, sweep.SUMMARY_FILE)).read() == table
  # Rerun: both points are done and are skipped, same table.
  again = io.StringIO()
  assert local.run(out=again) == table
  assert again.getvalue().count("already done") == 2
  train_log = os.path.join(local.model_dir(points[0]), "logs", "train.log")
  assert "Guarded training" in open(train_log).read()
