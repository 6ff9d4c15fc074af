"""Pre-flight checks on real gin configs, models and task data, in-process.

Each configuration is parsed as the t5 CLI parses it (cli/gin_config.py) and
the model is built by Mesh TF's own `utils.build_model`, as
`reliable_train_model` does inside the CLI; test_fail_fast_cli.py runs the
same checks through the CLI itself.
"""

import gzip
import json
import os

import gin
from mesh_tensorflow.transformer import utils
import pytest

from switch_mtf.cli import gin_config
from switch_mtf.tasks import paths
from switch_mtf.tasks import vocab  # pylint: disable=unused-import (tasks)
from switch_mtf.training import preflight

BASE = ("dataset.gin", "models/switch_tiny.gin", "runs/cpu_tiny.gin")
MOE_TOP2 = ("dataset.gin", "bench/moe_top2_tiny.gin", "runs/cpu_tiny.gin")
LENGTHS = {"inputs": 64, "targets": 16}


@pytest.fixture(autouse=True)
def _clean_gin():
  yield
  gin.clear_config()


def _problems(gin_params=(), gin_files=BASE, mesh_devices=None,
              num_cpu_devices=1, data=None):
  """Problems pre-flight finds in a config; `data`: task to read, or None."""
  gin_config.parse(gin_files, ["MIXTURE_NAME='smoke_span_corruption'",
                            *gin_params])
  mesh = gin_config.run_arg("mesh_shape")
  rules = gin_config.run_arg("layout_rules")
  model = utils.build_model(gin_config.run_arg("model_type"), 300, 300, rules,
                            mesh)
  try:
    preflight.check_training_run(
        mesh_shape=mesh, layout_rules=rules, mesh_devices=mesh_devices,
        num_cpu_devices=num_cpu_devices, model=model,
        mixture_or_task_name=data, sequence_length=LENGTHS, split="train")
  except preflight.PreflightError as e:
    assert str(e).startswith("The run was stopped before its first step")
    return e.problems
  return []


def _one(problems):
  assert len(problems) == 1, problems
  return problems[0]


def test_shipped_configs_pass():
  assert _problems(data="smoke_span_corruption") == []
  assert _problems(gin_files=MOE_TOP2) == []


def test_experts_not_divisible_by_their_mesh_dimension():
  problems = _problems(["utils.run.mesh_shape = 'batch:2'",
                        "num_experts = 3"])
  assert [p.split(":")[0] for p in problems] == [
      "encoder/block_000/layer_003", "decoder/block_000/layer_005"]
  for part in ("experts=3", "mesh dimension 'batch' (size 2)",
               "multiple of 2"):
    assert part in problems[0]


def test_layout_rule_naming_a_missing_mesh_dimension():
  rules = ("utils.run.layout_rules = 'ensemble:ensemble,batch:batch,"
           "d_ff:model,experts:expert'")
  problem = _one(_problems(["utils.run.mesh_shape = 'batch:2'", rules]))
  assert "layout rule 'experts:expert' names mesh dimension 'expert'" in (
      problem)
  assert "(its dimensions: batch)" in problem
  # Mesh TF's optional names (ensemble, model) are not problems.
  assert "ensemble" not in problem and "d_ff" not in problem


def test_mesh_shape_not_matching_the_devices():
  mesh = "utils.run.mesh_shape = 'batch:2'"
  problem = _one(_problems([mesh], mesh_devices=["cpu:0"], num_cpu_devices=2))
  assert "names 1 device(s) but utils.run.mesh_shape 'batch:2' has 2" in (
      problem)
  problem = _one(_problems([mesh], mesh_devices=["cpu:0", "cpu:1"]))
  assert "mesh device 'cpu:1' does not exist: the session has 1 CPU" in (
      problem)
  assert _problems([mesh], mesh_devices=["cpu:0", "/device:CPU:1"],
                   num_cpu_devices=2) == []


def test_top2_moe_needs_two_experts_and_sane_arguments():
  problems = _problems(["num_experts = 1", "MoE1D.capacity_factor_train = 0",
                        "MoE1D.group_size = 0"], gin_files=MOE_TOP2)
  text = "\n".join(problems)
  for layer in ("encoder/block_000/layer_003", "decoder/block_000/layer_005"):
    assert ("%s: each token goes to its top 2 experts but the layer has "
            "only 1" % layer) in text
    assert "%s: MoE1D.capacity_factor_train=0 must be > 0" % layer in text
    assert "%s: MoE1D.group_size=0 must be >= 1" % layer in text
  assert len(problems) == 6


def test_unknown_moe1d_gating_and_policy():
  problems = _problems(["MoE1D.moe_gating = 'top_3'"], gin_files=MOE_TOP2)
  assert "MoE1D.moe_gating='top_3' is unknown" in problems[0]
  problems = _problems(["MoE1D.moe_gating = 'switch'",
                        "MoE1D.switch_policy_train = 'jitter'"],
                       gin_files=MOE_TOP2)
  assert "MoE1D.switch_policy_train='jitter' is unknown" in problems[0]


def test_binding_in_a_misspelled_scope_is_reported():
  problem = _one(_problems(["encodr/Switch.capacity_factor_train = 2.0"]))
  assert "gin binds encodr/Switch.capacity_factor_train" in problem
  assert "built it in 'decoder', 'encoder'" in problem
  assert _problems(["encoder/Switch.capacity_factor_train = 2.0"]) == []


def test_unknown_parameter_of_ours_is_a_gin_error():
  with pytest.raises(ValueError, match="capacity_factr"):
    gin_config.parse(BASE, ["Switch.capacity_factr = 1.0"])


def test_unknown_task_gets_close_names():
  problem = _one(_problems(data="wiki_span_corrupton"))
  assert "Unknown task or mixture 'wiki_span_corrupton'" in problem
  assert "Did you mean wiki_span_corruption" in problem


def _superglue_dir(tmp_path, rows=None, task_dir="CB"):
  root = tmp_path / "superglue"
  if rows is not None:
    (root / task_dir).mkdir(parents=True)
    with gzip.open(root / task_dir / "train.jsonl.gz", "wt") as f:
      f.write("".join(r if isinstance(r, str) else json.dumps(r) + "\n"
                      for r in rows))
  return str(root)


def _cb_problems(superglue_dir, task="local_super_glue_cb"):
  return _problems(["local_superglue_dir.path = '%s'" % superglue_dir],
                   data=task)


def _cb_row(i):
  return {"premise": "p%d" % i, "hypothesis": "h", "label": "neutral",
          "idx": i}


def test_missing_or_empty_data_dir(tmp_path):
  missing = _superglue_dir(tmp_path)
  problem = _one(_cb_problems(missing))
  assert "SuperGLUE data directory %s does not exist" % missing in problem
  assert "SWITCH_MTF_SUPERGLUE_DIR" in problem
  os.makedirs(missing)
  problem = _one(_cb_problems(missing))
  assert "%s/CB/train.jsonl (or .jsonl.gz) not found" % missing in problem


def test_malformed_jsonl_row_names_file_and_line(tmp_path):
  root = _superglue_dir(tmp_path, [_cb_row(0), _cb_row(1), '{"premise": \n'])
  problem = _one(_cb_problems(root))
  assert "task 'local_super_glue_cb'" in problem
  assert "%s/CB/train.jsonl.gz:3: malformed JSON" % root in problem


def test_split_without_examples_would_hang_training(tmp_path):
  # WSC's simple-train task keeps only the positive rows; none here.
  row = {"text": "Mark told Pete he was late.", "label": False, "idx": 0,
         "target": {"span1_text": "Mark", "span1_index": 0,
                    "span2_text": "he", "span2_index": 3}}
  root = _superglue_dir(tmp_path, [row], task_dir="WSC")
  problem = _one(_cb_problems(root, "local_super_glue_wsc_simple_train"))
  assert "its 'train' split yields no examples" in problem


def test_missing_vocabulary_file(tmp_path, monkeypatch):
  missing = str(tmp_path / "nope.model")
  monkeypatch.setenv(vocab.VOCABULARY_ENV_VAR, missing)
  problem = _one(_problems(data="wiki_span_corruption"))
  assert "SentencePiece model %s does not exist" % missing in problem
  assert os.path.isfile(paths.EMBEDDED_VOCAB_PATH)  # the shipped one is fine


def test_damaged_gzip_data_is_named_not_silently_cut(tmp_path):
  root = _superglue_dir(tmp_path, [_cb_row(i) for i in range(50)])
  path = os.path.join(root, "CB", "train.jsonl.gz")
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 20)
  problem = _one(_cb_problems(root))
  assert problem.startswith("%s is a damaged gzip file (EOFError" % path)
