"""The distillation recipe (gin/distill/, training/distill.py), in process.

The recipe is parsed as the CLI parses it (Mesh TF's defaults.gin, then
models/switch_tiny.gin, then distill/pretrain.gin) and its student-teacher
model is built and run on a small batch: the loss must equal a NumPy
computation of (1-a)*hard + T^2*a*soft with Mesh TF's normalisation, the soft
targets being the teacher's evaluation-mode predictions from its checkpoint.
Wrong checkpoints must fail while the graph is built, naming what is wrong.
"""

import os

import gin
import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
from mesh_tensorflow.transformer import transformer
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.cli import gin_paths
from switch_mtf.training import distill

tf.disable_v2_behavior()

TRAIN = tf.estimator.ModeKeys.TRAIN
EVAL = tf.estimator.ModeKeys.EVAL
VOCAB = 100  # Mesh TF pads the softmax to 128
MESH_SHAPE = "batch:1"
LAYOUT = "batch:batch,experts:batch"
TEMPERATURE = 2.0
# Dropout on, so a teacher run in training mode would give other targets.
BASE_BINDINGS = (
    "Unitransformer.max_length = 16",
    "dropout_rate = 0.5",
    "TEMPERATURE = %r" % TEMPERATURE,
)


def _batch():
  rng = np.random.RandomState(0)
  inputs = rng.randint(2, VOCAB, size=(2, 8)).astype(np.int32)
  targets = rng.randint(2, VOCAB, size=(2, 8)).astype(np.int32)
  inputs[1, 5:] = 0
  targets[0, 6:] = 0  # padding: no loss
  targets[1, 3:] = 0
  return inputs, targets


def _parse(*bindings, recipe_file="distill/pretrain.gin", base=True):
  gin.clear_config()
  gin_paths.add_gin_search_path()
  gin.add_config_file_search_path(
      os.path.join(os.path.dirname(transformer.__file__), "gin"))
  gin.parse_config_files_and_bindings(
      ["defaults.gin", "models/switch_tiny.gin", recipe_file],
      list(BASE_BINDINGS if base else BASE_BINDINGS[:1]) + list(bindings))


@pytest.fixture
def recipe():
  """Parses the recipe with extra bindings; clears gin afterwards."""
  yield _parse
  gin.clear_config()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
  """(model dir, logits on the batch) of a teacher saved under the recipe."""
  model_dir = str(tmp_path_factory.mktemp("teacher"))
  try:
    _parse("TEACHER_CHECKPOINT = %r" % model_dir)
    logits = _save_teacher(model_dir)
  finally:
    gin.clear_config()
  return model_dir, logits


class _Mesh:
  """A one-device placement mesh and the batch as mtf tensors."""

  def __init__(self):
    self.graph = mtf.Graph()
    self.mesh = mtf.Mesh(self.graph, "mesh")
    inputs, targets = _batch()
    shape = mtf.Shape([mtf.Dimension("batch", inputs.shape[0]),
                       mtf.Dimension("length", inputs.shape[1])])
    self.inputs = mtf.import_fully_replicated(
        self.mesh, tf.constant(inputs), shape, name="inputs")
    self.targets = mtf.import_fully_replicated(
        self.mesh, tf.constant(targets), shape, name="targets")
    self.targets_value = targets

  def lower(self):
    mesh_shape = mtf.convert_to_shape(MESH_SHAPE)
    impl = placement_mesh_impl.PlacementMeshImpl(
        mesh_shape, mtf.convert_to_layout_rules(LAYOUT), [""])
    return mtf.Lowering(self.graph, {self.mesh: impl})


def _model_kwargs():
  return dict(input_vocab_size=VOCAB, output_vocab_size=VOCAB,
              layout=mtf.convert_to_layout_rules(LAYOUT),
              mesh_shape=mtf.convert_to_shape(MESH_SHAPE))


def _save_teacher(model_dir):
  """Trains nothing: writes a random teacher checkpoint, returns its logits.

  The teacher is built exactly as inside the student-teacher model (gin
  scope teacher/) but without the teacher/ variable scope, like a Switch run
  of its own, and run in evaluation mode.
  """
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    m = _Mesh()
    with gin.config_scope(distill.TEACHER_SCOPE):
      teacher = transformer.make_bitransformer(**_model_kwargs())
    logits, _ = teacher.call_simple(m.inputs, m.targets, compute_loss=True,
                                    mode=EVAL)
    lowering = m.lower()
    tf_logits = lowering.export_to_tf_tensor(logits)
    tf.train.get_or_create_global_step()
    saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(lowering.copy_masters_to_slices())
      teacher_logits = sess.run(tf_logits)
      saver.save(sess, os.path.join(model_dir, "model.ckpt"), global_step=0)
  return teacher_logits


def _build_student_teacher():
  """Builds the training graph of the recipe's model; returns its pieces."""
  m = _Mesh()
  model = transformer.make_bi_student_teacher(
      input_vocab_size=VOCAB, output_vocab_size=VOCAB,
      layout=mtf.convert_to_layout_rules(LAYOUT),
      mesh_shape=mtf.convert_to_shape(MESH_SHAPE))
  logits, loss = model.call_simple(m.inputs, m.targets, compute_loss=True,
                                   mode=TRAIN)
  return m, model, logits, loss


def _variable_shapes(build):
  """Variable name -> shape of the model `build` creates on the batch."""
  with tf.Graph().as_default():
    m = _Mesh()
    model = build()
    model.call_simple(m.inputs, m.targets, compute_loss=True, mode=EVAL)
    return {v.name: v.shape.to_integer_list for v in m.graph.all_variables}


def _run_student_teacher(step):
  """Student logits and loss at global step `step`, teacher from its ckpt."""
  with tf.Graph().as_default():
    m, model, logits, loss = _build_student_teacher()
    lowering = m.lower()
    tf_logits = lowering.export_to_tf_tensor(logits)
    tf_loss = lowering.export_to_tf_tensor(loss)
    model.initialize()  # Mesh TF loads the teacher (and student) here
    global_step = tf.train.get_or_create_global_step()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(global_step.assign(step))
      sess.run(lowering.copy_masters_to_slices())
      student_logits, total = sess.run([tf_logits, tf_loss])
  return student_logits, float(total), model.student.z_loss


def _log_softmax(x):
  shifted = x - x.max(-1, keepdims=True)
  log_z = np.log(np.exp(shifted).sum(-1, keepdims=True))
  return shifted - log_z, (log_z + x.max(-1, keepdims=True))[..., 0]


def _reference_loss(student_logits, teacher_logits, targets, fraction_soft,
                    temperature, z_loss):
  """(1-a)*hard + T^2*a*soft, each a token sum over non-padding / B*L."""
  s = student_logits.astype(np.float64)
  t = teacher_logits.astype(np.float64)
  weights = (targets > 0).astype(np.float64)
  denominator = targets.size
  log_p, log_z = _log_softmax(s)
  picked = np.take_along_axis(log_p, targets[..., None], -1)[..., 0]
  hard = ((-picked + z_loss * log_z ** 2) * weights).sum() / denominator
  log_q, log_z_t = _log_softmax(s / temperature)
  soft_targets = np.exp(_log_softmax(t / temperature)[0])
  soft_ce = -(soft_targets * log_q).sum(-1) + z_loss * log_z_t ** 2
  soft = (soft_ce * weights).sum() / denominator
  return (1 - fraction_soft) * hard + temperature ** 2 * fraction_soft * soft


def test_recipe_defaults_are_the_papers(recipe):
  recipe()
  assert gin.query_parameter("%FRACTION_SOFT") == 0.25  # 0.25 soft, 0.75 hard
  assert gin.query_parameter("%INIT_STUDENT_FROM_TEACHER") is True
  assert gin.query_parameter("utils.run.model_type") == "bi_student_teacher"


def test_loss_is_the_papers_mix_with_mesh_tf_normalisation(recipe, teacher):
  teacher_dir, teacher_logits = teacher
  recipe("TEACHER_CHECKPOINT = %r" % teacher_dir)
  targets = _batch()[1]

  student_logits, total, z_loss = _run_student_teacher(step=1)
  assert z_loss > 0  # the z-loss terms are part of the reference
  expected = _reference_loss(student_logits, teacher_logits, targets, 0.25,
                             TEMPERATURE, z_loss)
  hard_only = _reference_loss(student_logits, teacher_logits, targets, 0.0,
                              TEMPERATURE, z_loss)
  assert abs(expected - hard_only) > 0.05  # the soft term matters here
  np.testing.assert_allclose(total, expected, rtol=2e-5)

  # At the distill_start_step (0) and before, the loss is the hard loss.
  student_logits, total, _ = _run_student_teacher(step=0)
  np.testing.assert_allclose(
      total, _reference_loss(student_logits, teacher_logits, targets, 0.0,
                             TEMPERATURE, z_loss), rtol=2e-5)


@pytest.mark.parametrize("binding, expected", [
    # The student's dense FFN narrower than the teacher's.
    ("student/DenseReluDense.hidden_size = 256",
     ["encoder/block_000/layer_001/DenseReluDense/wi/kernel: "
      "student [128, 256], teacher checkpoint [128, 512]",
      "INIT_STUDENT_FROM_TEACHER = False"]),
    # A teacher configured with other experts than its checkpoint has.
    ("teacher/Switch.num_experts = 4",
     ["encoder/block_000/layer_003/MoE1D/wi/kernel: teacher [4, 128, 512], "
      "checkpoint [8, 128, 512]", "operative_config.gin"]),
])
def test_shape_mismatch_fails_while_building(recipe, teacher, binding,
                                             expected):
  teacher_dir, _ = teacher
  recipe("TEACHER_CHECKPOINT = %r" % teacher_dir, binding)
  with tf.Graph().as_default():
    with pytest.raises(distill.DistillationConfigError) as error:
      _build_student_teacher()
  for text in expected:
    assert text in str(error.value)
  assert teacher_dir in str(error.value)


def test_finetuning_recipe_builds_with_the_papers_finetuning(recipe,
                                                             teacher):
  teacher_dir, _ = teacher
  recipe("TEACHER_CHECKPOINT = %r" % teacher_dir,
         recipe_file="distill/finetune_superglue.gin", base=False)
  assert gin.query_parameter("%FRACTION_SOFT") == 0.25
  assert gin.query_parameter("%dropout_rate") == 0.1
  assert gin.query_parameter("%MIXTURE_NAME") == (
      "local_super_glue_proportional")
  assert gin.query_parameter("utils.run.train_steps") == 16000
  assert gin.query_parameter(
      "learning_rate_schedules.constant_learning_rate.learning_rate") == 0.001
  with tf.Graph().as_default():
    _, model, _, _ = _build_student_teacher()
  assert model.fraction_soft == 0.25 and model.initialize_student_weights


def test_student_shapes_checked_only_when_initialised_from_teacher(
    recipe, teacher):
  teacher_dir, _ = teacher
  recipe("TEACHER_CHECKPOINT = %r" % teacher_dir,
         "INIT_STUDENT_FROM_TEACHER = False",
         "student/DenseReluDense.hidden_size = 256")
  with tf.Graph().as_default():
    _build_student_teacher()


def test_init_only_ablation_is_the_student_without_a_teacher(recipe, tmp_path):
  recipe("FRACTION_SOFT = 0.0")  # the student alone, under student/
  student = _variable_shapes(lambda: transformer.make_bi_student_teacher(
      **_model_kwargs()))
  with gin.unlock_config():
    gin.parse_config_file("distill/init_only.gin")
  alone = _variable_shapes(lambda: transformer.make_bitransformer(
      **_model_kwargs()))
  assert {"student/" + name: shape for name, shape in alone.items()} == student
  assert gin.query_parameter("utils.run.model_type") == "bitransformer"
  # The teacher checkpoint is required, not silently skipped.
  with pytest.raises(distill.DistillationConfigError,
                     match="No teacher checkpoint"):
    distill.checked_teacher_checkpoint()
  with gin.unlock_config():
    gin.bind_parameter("%TEACHER_CHECKPOINT", str(tmp_path / "missing"))
  with pytest.raises(distill.DistillationConfigError, match="not found"):
    distill.checked_teacher_checkpoint()


def test_missing_checkpoint_names_the_path_and_the_flag(tmp_path):
  with pytest.raises(distill.DistillationConfigError,
                     match="TEACHER_CHECKPOINT='/path/to/teacher/model_dir'"):
    distill.resolve_checkpoint(None)
  empty = str(tmp_path / "empty_run")
  os.makedirs(empty)
  with pytest.raises(distill.DistillationConfigError) as error:
    distill.resolve_checkpoint(empty)
  assert repr(empty) in str(error.value)
  assert "directory without a checkpoint" in str(error.value)
  missing = str(tmp_path / "run" / "model.ckpt-100")
  with pytest.raises(distill.DistillationConfigError) as error:
    distill.resolve_checkpoint(missing)
  assert repr(missing) in str(error.value)
  assert "model.ckpt-100.index" in str(error.value)


def test_checkpoint_resolves_from_model_dir_or_prefix(tmp_path):
  with tf.Graph().as_default():
    tf.get_variable("w", [2, 3])
    saver = tf.train.Saver()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for step in (10, 20):
        saver.save(sess, str(tmp_path / "model.ckpt"), global_step=step)
  latest = str(tmp_path / "model.ckpt-20")
  assert distill.resolve_checkpoint(str(tmp_path)) == latest
  earlier = str(tmp_path / "model.ckpt-10")
  assert distill.resolve_checkpoint(earlier) == earlier
  assert distill.checkpoint_shapes(earlier) == {"w": (2, 3)}


def test_error_lists_every_mismatch_but_caps_the_listing():
  student = {"layer_%03d/w" % i: (4,) for i in range(30)}
  stored = {"layer_%03d/w" % i: (5,) for i in range(30)}
  stored["only_in_teacher"] = (1,)
  with pytest.raises(distill.DistillationConfigError) as error:
    distill.student_variables_to_copy(student, stored, "/ckpt")
  message = str(error.value)
  assert "layer_019/w: student [4], teacher checkpoint [5]" in message
  assert "layer_020/w" not in message
  assert "... and 10 more" in message
  # Names the checkpoint lacks are simply not copied (experts, new FFNs).
  assert distill.student_variables_to_copy(
      {"a": (1,), "b": (2,)}, {"a": (1,), "c": (3,)}, "/ckpt") == ["a"]


def test_fraction_of_gain_kept():
  # Table 6's last row: T5-Base -1.636, Switch-Base -1.444, student -1.580
  # (neg. log perplexity), "29%".
  kept = distill.fraction_of_gain_kept(1.636, 1.580, 1.444)
  assert round(100 * kept) == 29
  assert distill.fraction_of_gain_kept(5.0, 4.9, 5.0) is None
  assert distill.fraction_of_gain_kept(5.0, 4.9, 5.1) is None
