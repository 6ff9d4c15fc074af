"""Bad configurations and non-finite training stop the real CLI, with reasons.

Every run is the user's command (`switch_mtf_transformer` with
runs/reliable.gin) in a subprocess. A stopped run must exit non-zero, name
the offending value and the fix, and not have trained: no "step, tf_loss"
line and no checkpoint.
The fast tests put several pre-flight problems into one run (pre-flight
lists them all); the slow matrix covers each remaining case on its own.
"""

import gzip
import os

import pytest

from tests.cli import cli_runs

FLAGS = (*cli_runs.TINY_TRAIN_FLAGS, "--gin_file=runs/reliable.gin")


def _run_stopped(tmp_path, *extra):
  """Runs the CLI; asserts it stopped before training; returns its log."""
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, [*FLAGS, *extra], cwd=str(tmp_path))
  assert proc.returncode != 0, proc.stdout[-3000:]
  assert "step, tf_loss" not in proc.stdout
  assert not os.path.isdir(model_dir) or not cli_runs.checkpoint_steps(
      model_dir)
  return proc.stdout


def _gin(binding):
  return "--gin_param=" + binding


def test_preflight_lists_every_problem_before_the_first_step(tmp_path):
  missing = str(tmp_path / "no_superglue")
  log = _run_stopped(
      tmp_path,
      _gin("MIXTURE_NAME='local_super_glue_cb'"),
      _gin("local_superglue_dir.path='%s'" % missing),
      _gin("utils.run.mesh_shape='batch:2'"),
      _gin("utils.run.mesh_devices=['cpu:0', 'cpu:1', 'cpu:2']"),
      _gin("utils.run.layout_rules='batch:batch,d_ff:model,experts:bacth'"),
      _gin("encodr/Switch.capacity_factor_train=2.0"))
  assert "PreflightError: The run was stopped before its first step" in log
  for expected in (
      "utils.run.mesh_devices names 3 device(s) but utils.run.mesh_shape "
      "'batch:2' has 2 slices",
      "mesh device 'cpu:1' does not exist",
      "layout rule 'experts:bacth' names mesh dimension 'bacth'",
      "SuperGLUE data directory %s does not exist" % missing,
      "gin binds encodr/Switch.capacity_factor_train"):
    assert expected in log


def test_bad_switch_argument_stops_the_cli(tmp_path):
  log = _run_stopped(tmp_path, _gin("Switch.capacity_factor_train=0"))
  assert "Switch.capacity_factor_train=0 must be > 0" in log


def test_gin_binding_an_unknown_parameter_of_ours_stops_the_cli(tmp_path):
  log = _run_stopped(tmp_path, _gin("Switch.capacity_factr=1.0"))
  assert ("Configurable 'Switch' doesn't have a parameter named "
          "'capacity_factr'") in log


# Slow: a CLI training run until the router overflows; test_numerics.py
# keeps the non-finite check itself in the fast suite.
@pytest.mark.slow
def test_nonfinite_router_stops_with_step_layer_and_checkpoint(tmp_path):
  # Router-input jitter of +-1e38 overflows the decoder router's logits.
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, [
      *FLAGS, _gin("decoder/Switch.jitter_eps=1e38")], cwd=str(tmp_path))
  assert proc.returncode != 0
  assert ("NonFiniteError: Non-finite values at step 1: loss nan; router "
          "probabilities non-finite in layer(s) decoder/block_000/layer_005."
          in proc.stdout)
  assert "Last good checkpoint: %s/model.ckpt-0." % model_dir in proc.stdout
  assert cli_runs.checkpoint_steps(model_dir) == [0]


def _bad_superglue_dir(tmp_path):
  root = tmp_path / "superglue"
  (root / "CB").mkdir(parents=True)
  with gzip.open(root / "CB" / "train.jsonl.gz", "wt") as f:
    f.write('{"premise": "p", "hypothesis": "h", "label": "neutral", '
            '"idx": 0}\n{"premise": \n')
  return str(root)


@pytest.mark.slow
@pytest.mark.parametrize("case,extra,env,expected", [
    ("experts", ["utils.run.mesh_shape='batch:2'", "num_experts=3"], {},
     "experts=3 is not divisible by mesh dimension 'batch' (size 2)"),
    ("group", ["Switch.group_size=0"], {},
     "Switch.group_size=0 must be a positive integer"),
    ("policy", ["Switch.router_policy_train='jitter'"], {},
     "Switch.router_policy_train='jitter' is not a known router policy"),
    ("activation", ["Switch.activation='swish'"], {},
     "Switch.activation='swish' is not supported"),
    ("top2", ["num_experts=1"], {},
     "each token goes to its top 2 experts but the layer has only 1"),
    ("task", ["MIXTURE_NAME='wiki_span_corrupton'"], {},
     "No Task or Mixture found with name 'wiki_span_corrupton'"),
    ("vocab", ["MIXTURE_NAME='wiki_span_corruption'"],
     {"SWITCH_MTF_VOCABULARY": "/no/such/spm.model"},
     "SentencePiece model /no/such/spm.model does not exist"),
    ("jsonl", ["MIXTURE_NAME='local_super_glue_cb'"], {},
     "/CB/train.jsonl.gz:2: malformed JSON"),
])
def test_each_bad_input_stops_the_cli(case, extra, env, expected, tmp_path,
                                      monkeypatch):
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  flags = [_gin(b) for b in extra]
  if case == "top2":
    flags.append("--gin_file=bench/moe_top2_tiny.gin")
  if case == "jsonl":
    flags.append(_gin("local_superglue_dir.path='%s'"
                      % _bad_superglue_dir(tmp_path)))
  assert expected in _run_stopped(tmp_path, *flags)
