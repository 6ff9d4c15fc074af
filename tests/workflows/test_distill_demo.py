"""`make distill-demo` (workflows/distill_demo.py): plan, results, report.

The plan must reuse the demo's own runs and train the student exactly like
the dense baseline (steps, data, seed) from the demo teacher's final
checkpoint; results are read from the eval event files the CLI writes; the
report's fraction of the teacher's gain follows the paper's definition and
says when it means nothing. The slow test runs the whole demo, tiny.
"""

import json
import os

import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.cli import pipeline
from switch_mtf.workflows import demo
from switch_mtf.workflows import distill_demo
from tests import repo_paths

TASK = "wiki_span_corruption"


def _flag_value(flags, name):
  """The last `--gin_param=NAME=value` binding's value."""
  values = [f.split("=", 2)[2] for f in flags
            if f.startswith("--gin_param=%s=" % name)]
  return values[-1] if values else None


def test_plan_reuses_the_demo_runs_and_trains_students_alike(tmp_path):
  config = demo.DemoConfig(run_dir=str(tmp_path), pretrain_steps=300,
                           switch_gin_params=("Switch.num_experts=16",))
  plan = distill_demo.phases(config, distill_demo.DistillOptions())
  demo_plan = demo.phases(config)
  reused = [p for p in demo_plan
            if p.model_dir in (config.model_dir(demo.SWITCH),
                               config.model_dir(demo.DENSE))]
  assert plan[:len(reused)] == reused
  dense_train = [p for p in reused if p.kind == pipeline.TRAIN][-1]

  train, evaluate = plan[len(reused):]
  assert train.model_dir == evaluate.model_dir == config.model_dir(
      distill_demo.STUDENT)
  assert train.target_step == evaluate.target_step == 300
  for name in ("MIXTURE_NAME", "utils.run.train_steps",
               "mesh_train_dataset_fn.seed"):
    assert _flag_value(train.flags, name) == _flag_value(dense_train.flags,
                                                         name), name
  assert _flag_value(train.flags, "TEACHER_CHECKPOINT") == repr(
      os.path.join(config.model_dir(demo.SWITCH), "model.ckpt-300"))
  assert _flag_value(train.flags, "FRACTION_SOFT") == "0.25"
  # The teacher's own overrides reach the teacher.
  assert "--gin_param=Switch.num_experts=16" in train.flags
  gin_files = [f for f in train.flags if f.startswith("--gin_file=")]
  assert gin_files.index("--gin_file=distill/pretrain.gin") > gin_files.index(
      "--gin_file=" + config.switch_gin)
  # The student is evaluated alone (no soft loss: Mesh TF skips the teacher).
  assert _flag_value(evaluate.flags, "FRACTION_SOFT") == "0.0"
  assert evaluate.kind == pipeline.PERPLEXITY_EVAL


def test_ablations_add_table6_rows(tmp_path):
  config = demo.DemoConfig(run_dir=str(tmp_path))
  plan = distill_demo.phases(config,
                             distill_demo.DistillOptions(ablations=True))
  by_dir = {}
  for phase in plan:
    by_dir.setdefault(os.path.basename(phase.model_dir), []).append(phase)
  no_init = by_dir[distill_demo.NO_INIT][0]
  assert _flag_value(no_init.flags, "INIT_STUDENT_FROM_TEACHER") == "False"
  init_only = by_dir[distill_demo.INIT_ONLY][0]
  assert "--gin_file=distill/init_only.gin" in init_only.flags
  assert _flag_value(init_only.flags, "FRACTION_SOFT") is None
  labels = [r.label for r in distill_demo.rows(
      config, distill_demo.DistillOptions(ablations=True))]
  assert labels[0].startswith("dense") and labels[-1].startswith("teacher")
  assert len(labels) == 5


def test_options_out_of_range_are_refused():
  with pytest.raises(ValueError, match="--fraction_soft=0.0"):
    distill_demo.DistillOptions(fraction_soft=0.0)
  with pytest.raises(ValueError, match="--temperature=-1"):
    distill_demo.DistillOptions(temperature=-1)


def test_demo_options_are_loaded_and_steps_must_match(tmp_path):
  run_dir = str(tmp_path)
  assert distill_demo.load_demo_config(run_dir, 50).pretrain_steps == 50
  saved = demo.DemoConfig(run_dir=run_dir, pretrain_steps=700,
                          gin_params=("d_model=64",))
  demo.check_config(saved)
  assert distill_demo.load_demo_config(run_dir) == saved
  assert distill_demo.load_demo_config(run_dir, 700) == saved
  with pytest.raises(ValueError, match="pretrains for 700 steps"):
    distill_demo.load_demo_config(run_dir, 50)


def test_students_made_with_other_options_are_not_mixed(tmp_path):
  config = demo.DemoConfig(run_dir=str(tmp_path))
  distill_demo.check_options(config, distill_demo.DistillOptions())
  distill_demo.check_options(
      config, distill_demo.DistillOptions(ablations=True))  # adds runs only
  with pytest.raises(ValueError, match="fraction_soft: 0.25 there, 0.5 now"):
    distill_demo.check_options(
        config, distill_demo.DistillOptions(fraction_soft=0.5))


def _write_eval(model_dir, subdir, values):
  """Event file as the estimator's evaluate writes it: step -> value."""
  with tf.Graph().as_default():
    writer = tf.summary.FileWriter(os.path.join(model_dir, subdir))
    for step, value in values.items():
      writer.add_summary(tf.Summary(value=[tf.Summary.Value(
          tag=distill_demo.VALIDATION_TAG, simple_value=value)]), step)
    writer.close()


def test_validation_loss_is_read_from_the_eval_events(tmp_path):
  model_dir = str(tmp_path)
  _write_eval(model_dir, "eval_%s_validation_640" % TASK,
              {200: -5.5, 1000: -4.25})
  _write_eval(model_dir, "eval_other_task_validation_640", {1000: -1.0})
  assert distill_demo.validation_loss(model_dir, TASK, 1000) == 4.25
  assert distill_demo.validation_loss(model_dir, TASK, 200) == 5.5
  assert distill_demo.validation_loss(model_dir, TASK, 400) is None


def test_parameters_of_one_model_in_a_student_teacher_checkpoint(tmp_path):
  with tf.Graph().as_default():
    with tf.variable_scope("student"):
      tf.get_variable("w", [2, 3])
      tf.get_variable("w_slot_vr", [2])
    with tf.variable_scope("teacher"):
      tf.get_variable("w", [4, 5])
    tf.train.get_or_create_global_step()
    saver = tf.train.Saver()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      saver.save(sess, str(tmp_path / "model.ckpt"), global_step=5)
  assert distill_demo.parameters(str(tmp_path), "student") == 6
  assert distill_demo.parameters(str(tmp_path)) == 26
  assert distill_demo.parameters(str(tmp_path / "none")) is None


def _report(dense, student, teacher, sizes=(100, 100, 400), no_init=None,
            init_only=None):
  rows = [distill_demo.Row("dense", "d"), distill_demo.Row("student", "s")]
  losses = {"dense": dense, "student": student}
  for label, directory, loss in (("no init", distill_demo.NO_INIT, no_init),
                                 ("init only", distill_demo.INIT_ONLY,
                                  init_only)):
    if loss is not None:
      rows.append(distill_demo.Row(label, "/run/" + directory))
      losses[label] = loss
  rows.append(distill_demo.Row("teacher", "t"))
  losses["teacher"] = teacher
  size = {"dense": sizes[0], "student": sizes[1], "teacher": sizes[2]}
  return (distill_demo.results_table(losses, size, rows),
          "\n".join(distill_demo.findings(losses, size, rows)))


def test_report_gives_the_papers_fraction():
  table, text = _report(5.0, 4.9, 4.8)
  assert table[3] == "| student | 100 | 4.900 | 134.3 | -0.100 | 50% |"
  assert table[4].startswith("| teacher | 400 | 4.800 |")
  assert "50% (teacher's gain 0.200)" in text
  assert "beats its teacher" not in text


def test_report_says_when_the_fraction_means_nothing():
  table, text = _report(5.0, 4.9, 5.05)
  assert table[3].endswith("| -0.100 | – |")
  assert "not better than the dense model here (+0.050)" in text
  _, text = _report(5.0, 4.7, 4.8)
  assert "150%" in text and "beats its teacher (-0.100)" in text
  _, text = _report(5.0, 4.9, 5.05)
  assert "beats its teacher (-0.150)" in text
  _, text = _report(5.0, 4.9, 4.8, sizes=(100, 120, 400))
  assert "not the same architecture" in text


def test_report_separates_init_and_soft_targets_with_ablations():
  table, text = _report(5.0, 4.85, 4.8, no_init=4.95, init_only=4.9)
  assert [line.split(" |")[0] for line in table[2:]] == [
      "| dense", "| student", "| no init", "| init only", "| teacher"]
  assert table[4].endswith("| 4.950 | 141.2 | -0.050 | 25% |")
  assert "Init from the teacher alone: -0.100 vs dense" in text
  assert ("adding the soft targets (the distilled student) changes that by "
          "-0.050" in text)
  assert ("Distillation without the init: -0.050 vs dense; the init changes "
          "that by -0.100" in text)
  _, text = _report(5.0, 4.85, 4.8)
  assert "`--ablations` separates" in text


@pytest.mark.slow
def test_whole_demo_tiny(tmp_path):
  """Every phase through the real CLI, 5 steps each (a few minutes)."""
  tool = repo_paths.load_tool("distill_demo")
  run_dir = str(tmp_path / "run")
  assert tool.main(["--run_dir=" + run_dir, "--pretrain_steps=5"]) == 0
  report = open(os.path.join(run_dir, distill_demo.REPORT_FILE)).read()
  config = json.load(open(os.path.join(run_dir, demo.CONFIG_FILE)))
  assert config["pretrain_steps"] == 5
  for row in distill_demo.rows(demo.DemoConfig(run_dir=run_dir),
                               distill_demo.DistillOptions()):
    line = [l for l in report.splitlines() if l.startswith("| " + row.label)]
    assert line and "| – |" not in line[0].split("|", 4)[3], line
