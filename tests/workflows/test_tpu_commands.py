"""tools/tpu_launch.py: dry-run commands carry the flags given; layouts that
do not fit the slice are refused before anything starts.

The layout is read by parsing the real gin files (our model zoo and Mesh
TF's defaults), as the CLI does; no TPU is needed.
"""

import shlex
import types

import pytest

from switch_mtf.analysis import layout_check
from switch_mtf.workflows import tpu_commands
from tests import repo_paths

FLAGS = ["--tpu=my-tpu", "--zone=europe-west4-a", "--project=my-proj",
         "--model_dir=gs://bucket/switch", "--model_gin=models/switch_tiny.gin",
         "--layout_gin=runs/demo_pretrain.gin", "--accelerator_type=v3-8",
         "--mixture=wiki_span_corruption", "--pretrain_steps=500",
         "--finetune_steps=70", "--finetune_mixture=local_super_glue_rte",
         "--finetune_gin=runs/demo_finetune.gin"]


def _load_tool():
  return repo_paths.load_tool("tpu_launch")


@pytest.fixture(name="run_tool")
def fixture_run_tool(capsys):
  tool = _load_tool()

  def run(*extra):
    code = tool.main([*FLAGS, *extra])
    out, err = capsys.readouterr()
    return types.SimpleNamespace(returncode=code, stdout=out, stderr=err)
  return run


def _commands(stdout):
  """The printed commands, split back into argv lists."""
  blocks = [b for b in stdout.split("\n\n") if b.startswith("# ") and
            "\n" in b and "t5_mesh_transformer" in b]
  return {b.splitlines()[0][2:]: shlex.split(b.split("\n", 1)[1])
          for b in blocks}


def test_dry_run_prints_the_three_commands_with_the_flags_given(run_tool):
  proc = run_tool("--gin_param=utils.run.mesh_shape='batch:8'")
  assert proc.returncode == 0, proc.stderr
  commands = _commands(proc.stdout)
  assert list(commands) == ["pretrain", "fine-tune", "evaluate"]
  for argv in commands.values():
    assert argv[0] == "t5_mesh_transformer"
    for flag in ("--tpu=my-tpu", "--gcp_project=my-proj",
                 "--tpu_zone=europe-west4-a",
                 "--module_import=switch_mtf.tasks",
                 "--gin_file=models/switch_tiny.gin",
                 "--gin_file=runs/demo_pretrain.gin",
                 "--gin_param=utils.tpu_mesh_shape.tpu_topology='v3-8'",
                 "--gin_param=utils.run.mesh_shape='batch:8'"):
      assert flag in argv, (flag, argv)
  pretrain, finetune, evaluate = commands.values()
  assert "--model_dir=gs://bucket/switch/pretrain" in pretrain
  assert "--gin_param=MIXTURE_NAME='wiki_span_corruption'" in pretrain
  assert "--gin_param=utils.run.train_steps=500" in pretrain
  finetune_dir = "--model_dir=gs://bucket/switch/finetune_local_super_glue_rte"
  assert finetune_dir in finetune and finetune_dir in evaluate
  assert ("--gin_param=utils.run.init_checkpoint="
          "'gs://bucket/switch/pretrain/model.ckpt-500'") in finetune
  assert "--gin_param=utils.run.train_steps=570" in finetune
  assert "--gin_file=runs/demo_finetune.gin" in finetune
  assert "--gin_file=eval.gin" in evaluate
  assert "--gin_param=utils.run.eval_checkpoint_step=570" in evaluate
  assert "--gin_param=utils.run.dataset_split='validation'" in evaluate
  assert "Dry run: nothing was started" in proc.stdout


def test_training_is_guarded_unless_asked_not_to(run_tool):
  mesh = "--gin_param=utils.run.mesh_shape='batch:8'"
  guarded = _commands(run_tool(mesh).stdout)
  unguarded = _commands(run_tool(mesh, "--unguarded").stdout)
  for name in ("pretrain", "fine-tune"):
    argv = guarded[name]
    # After the run's own gin files, as runs/reliable.gin asks.
    assert argv.index("--gin_file=runs/reliable.gin") > argv.index(
        "--gin_file=runs/demo_pretrain.gin")
    assert "--gin_file=runs/reliable.gin" not in unguarded[name]
  assert "--gin_file=runs/reliable.gin" not in guarded["evaluate"]
  assert [a for a in guarded["evaluate"]] == unguarded["evaluate"]


def test_refuses_a_mesh_that_does_not_match_the_core_count(run_tool):
  proc = run_tool("--gin_param=utils.run.mesh_shape='batch:4,model:1'")
  assert proc.returncode == 2
  assert "mesh shape batch:4,model:1 has 4 devices but the slice has 8" in (
      proc.stderr)
  assert "t5_mesh_transformer" not in proc.stdout


def test_refuses_experts_that_do_not_divide_over_their_mesh_dimension(
    run_tool):
  # switch_tiny has 8 experts per layer, split like the batch (experts:batch)
  # 3 ways on a 12-core mesh.
  proc = run_tool("--gin_param=utils.run.mesh_shape='batch:3,model:4'",
                   "--accelerator_type=v2-12")
  assert proc.returncode == 2
  assert ("num_experts=8 is not divisible by mesh dimension 'batch' (size 3)"
          in proc.stderr)
  assert "encoder/block_000/layer_003" in proc.stderr


def test_topology_binding_sets_the_default_tpu_mesh():
  # Without a mesh in the layout gin, Mesh TF's defaults derive it from the
  # slice: 32 cores, model_parallelism 1 -> batch:32; 8 experts over 32.
  layout = layout_check.resolve(
      ["models/switch_tiny.gin"],
      ["utils.tpu_mesh_shape.tpu_topology='v3-32'"])
  assert [(d.name, d.size) for d in layout.mesh_shape.dims] == [("batch", 32)]
  assert [l.num_experts for l in layout.expert_layers] == [8, 8]
  problems = layout_check.problems(layout, 32)
  assert len(problems) == 1 and "num_experts=8 is not divisible" in (
      problems[0])
  ok = layout_check.resolve(
      ["models/switch_tiny.gin"],
      ["utils.tpu_mesh_shape.tpu_topology='v3-32'", "num_experts=32"])
  assert not layout_check.problems(ok, 32)


@pytest.mark.parametrize("name,cores", [("v3-32", 32), ("v2-8", 8),
                                        ("v3-2048", 2048)])
def test_core_counts(name, cores):
  assert layout_check.cores_of(name) == cores


@pytest.mark.parametrize("name", ["v4-32", "v3", "tpu-8", ""])
def test_unknown_slice_names_are_refused(name):
  with pytest.raises(layout_check.LayoutError, match="--num_cores"):
    layout_check.cores_of(name)


def test_model_dir_must_be_on_gcs():
  with pytest.raises(ValueError, match="gs://"):
    tpu_commands.TpuJob(tpu="t", zone="z", project="p", model_dir="/tmp/x",
                        model_gin="m", layout_gin="l", mixture="x",
                        accelerator_type="v3-8")


def test_shell_quoting_round_trips():
  for arg in ("--gin_param=MIXTURE_NAME='c4'", "--x=1",
              "--gin_param=utils.run.batch_size=('tokens_per_batch', 1024)",
              '--gin_param=a="b"', "a b"):
    assert shlex.split(tpu_commands.shell_quote(arg)) == [arg]
