"""Router metrics reach TensorBoard on CPU: values, microbatching, the CLI."""

import glob
import os

import mesh_tensorflow as mtf
from mesh_tensorflow import placement_mesh_impl
from mesh_tensorflow.transformer import transformer
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.layer import standalone
from switch_mtf.layer import switch as layer_lib
from tests.cli import cli_runs
from tests.layer import layer_harness
from tests.layer import numpy_reference

B, L, M, E, H = 4, 8, 6, 4, 5
PREFIX = "encoder/layer_000/MoE1D"
TAG = "switch/encoder/layer_000/"
METRICS = ("load_balancing_loss", "tokens_dropped_fraction",
           "router_entropy", "top1_probability_mean")


def _data(seed=0):
  rng = np.random.RandomState(seed)
  x = rng.randn(B, L, M).astype(np.float32)
  sequence_id = np.ones([B, L], np.int32)
  sequence_id[1, 3:] = 0
  sequence_id[3, 6:] = 0
  weights = layer_harness.switch_weights(rng, M, E, H)
  weights[PREFIX + "/switch_gating/kernel"][:, 2] += 0.5
  return x, sequence_id, weights


def _make_layer():
  return layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8,
                          capacity_factor_train=1.0, min_expert_capacity=1,
                          router_policy_train="argmax")


def _expected(x, sequence_id, weights):
  """Metric values from the NumPy reference (tag suffix -> value)."""
  real = sequence_id != 0
  ref = numpy_reference.switch_layer(
      x * real[..., None], weights[PREFIX + "/switch_gating/kernel"],
      weights[PREFIX + "/wi/kernel"], weights[PREFIX + "/wo/kernel"],
      nonpadding=real.astype(float), group_size=8, capacity_factor=1.0,
      min_capacity=1)
  probs = ref.router_probs[real]
  expected = {
      "load_balancing_loss": ref.load_balancing_loss,
      "tokens_dropped_fraction": 1.0 - ref.kept.sum() / real.sum(),
      "router_entropy": np.mean(-(probs * np.log(probs)).sum(-1)),
      "top1_probability_mean": np.mean(probs.max(-1)),
  }
  for e in range(E):
    expected["expert_fraction/expert_%03d" % e] = np.mean(
        ref.expert_index[real] == e)
  return expected


def test_summaries_hold_the_reference_metric_values():
  x, sequence_id, weights = _data()
  result = layer_harness.run_layer(_make_layer, x, sequence_id, weights)
  expected = _expected(x, sequence_id, weights)
  assert 0 < expected["tokens_dropped_fraction"] < 1
  assert set(result.summaries) == {TAG + name for name in expected}
  for name, value in expected.items():
    np.testing.assert_allclose(result.summaries[TAG + name], value,
                               rtol=1e-5, atol=1e-6, err_msg=name)


def test_router_z_loss_summary_and_loss_term():
  x, sequence_id, weights = _data(seed=1)
  result = layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8,
                               router_policy_train="argmax", loss_coef=0.0,
                               router_z_loss_coef=0.001),
      x, sequence_id, weights)
  real = sequence_id != 0
  logits = (x[real].astype(np.float64)
            @ weights[PREFIX + "/switch_gating/kernel"])
  top = logits.max(-1)
  log_z = top + np.log(np.exp(logits - top[:, None]).sum(-1))
  z_loss = np.mean(log_z ** 2)
  np.testing.assert_allclose(result.summaries[TAG + "router_z_loss"], z_loss,
                             rtol=1e-5)
  np.testing.assert_allclose(result.aux_loss, 0.001 * z_loss, rtol=1e-5)


def test_no_summaries_outside_training():
  x, sequence_id, weights = _data()
  result = layer_harness.run_layer(_make_layer, x, sequence_id, weights,
                                   mode=layer_harness.EVAL)
  assert not result.summaries


def _microbatched_steps(x, sequence_id, weights, num_microbatches, steps):
  """Summaries of `steps` training steps run as Mesh TF microbatch loops."""
  tf.reset_default_graph()
  graph = mtf.Graph()
  mesh = mtf.Mesh(graph, "mesh")
  batch_dim = mtf.Dimension("batch", B)
  length_dim = mtf.Dimension("length", L)
  model_dim = mtf.Dimension("d_model", M)
  features = {
      "x": mtf.import_fully_replicated(
          mesh, tf.constant(x), mtf.Shape([batch_dim, length_dim, model_dim])),
      "sequence_id": mtf.import_fully_replicated(
          mesh, tf.constant(sequence_id), mtf.Shape([batch_dim, length_dim])),
  }

  def model_fn(microbatch):
    losses = []
    context = transformer.Context(
        model=standalone.StandInModel("", "", model_dim),
        mesh=mesh, batch_dims=microbatch["x"].shape.dims[:1],
        length_dim=length_dim,
        variable_dtype=mtf.VariableDType(tf.float32, tf.float32, tf.float32),
        mode=layer_harness.TRAIN, sequence_id=microbatch["sequence_id"],
        losses=losses, num_microbatches=num_microbatches)
    layer = _make_layer()
    layer.set_name(layer_harness.LAYER_NAME)
    stack = transformer.LayerStack(
        [layer], sublayers_initial=[],
        sublayers_per_layer=[transformer.sublayer_call_layer],
        sublayers_final=[])
    with tf.variable_scope(layer_harness.SCOPE):
      y = stack.call(context, microbatch["x"])
    return {"loss": mtf.reduce_sum(y) + mtf.add_n(losses)}

  _, outputs = mtf.serialize_training_step(features, model_fn, batch_dim,
                                           num_microbatches)
  mesh_impl = placement_mesh_impl.PlacementMeshImpl(
      shape=[], layout={}, devices=[""])
  lowering = mtf.Lowering(graph, {mesh: mesh_impl}, autostack=False)
  loss = lowering.export_to_tf_tensor(outputs["loss"])
  summary_op = tf.summary.merge_all()
  summaries = []
  with tf.Session() as sess:
    sess.run([tf.global_variables_initializer(),
              tf.local_variables_initializer()])
    masters = {v.op.name: v for v in tf.global_variables()}
    for name, value in weights.items():
      masters[name].load(value, sess)
    sess.run(lowering.copy_masters_to_slices())
    for _ in range(steps):
      serialized, _ = sess.run([summary_op, loss])
      summary = tf.Summary.FromString(serialized)
      summaries.append({v.tag: v.simple_value for v in summary.value})
  return summaries


def test_microbatched_steps_report_the_mean_over_microbatches():
  x, sequence_id, weights = _data()
  first, second = _microbatched_steps(x, sequence_id, weights,
                                      num_microbatches=2, steps=2)
  # The first summary has no finished step to report; the next reports the
  # previous step (identical here: no weight updates), averaged over the
  # two microbatches (Mesh TF deals batch rows out in turn: 0, 2 and 1, 3).
  assert not first
  halves = [_expected(x[rows], sequence_id[rows], weights)
            for rows in (slice(0, None, 2), slice(1, None, 2))]
  assert set(second) == {TAG + name for name in halves[0]}
  for name in halves[0]:
    np.testing.assert_allclose(
        second[TAG + name], (halves[0][name] + halves[1][name]) / 2,
        rtol=1e-5, atol=1e-6, err_msg=name)


def _event_scalars(model_dir):
  """{tag: [(step, value)]} from every event file in model_dir."""
  scalars = {}
  for path in glob.glob(os.path.join(model_dir, "events.out.tfevents.*")):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append((event.step,
                                                  value.simple_value))
  return scalars


def _check_layer_metrics(scalars, layer, num_experts=8):
  prefix = "switch/%s/" % layer
  for name in METRICS:
    assert prefix + name in scalars, (prefix + name, sorted(scalars))
  fractions = [scalars["%sexpert_fraction/expert_%03d" % (prefix, e)][-1][1]
               for e in range(num_experts)]
  np.testing.assert_allclose(sum(fractions), 1.0, rtol=1e-5)
  assert 0.0 <= scalars[prefix + "tokens_dropped_fraction"][-1][1] < 1.0
  assert 0.0 < scalars[prefix + "top1_probability_mean"][-1][1] <= 1.0
  assert scalars[prefix + "load_balancing_loss"][-1][1] > 0.0


# Slow: a whole CLI training run; the fast tests check the metrics the
# layer computes and how they are summarized.
@pytest.mark.slow
def test_cli_training_run_writes_router_metrics_per_layer(tmp_path):
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, cli_runs.TINY_TRAIN_FLAGS,
                          cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  scalars = _event_scalars(model_dir)
  _check_layer_metrics(scalars, "encoder/block_000/layer_003")
  _check_layer_metrics(scalars, "decoder/block_000/layer_005")


@pytest.mark.slow
def test_cli_microbatched_run_writes_router_metrics(tmp_path):
  # 512 tokens per step, 256 per microbatch: two microbatches. Summaries are
  # written at the first step (nothing to report yet) and every 100 steps.
  model_dir = str(tmp_path / "model")
  flags = cli_runs.TINY_TRAIN_FLAGS + (
      "--gin_param=utils.serialize_num_microbatches"
      ".tokens_per_microbatch_per_replica = 256",
      "--gin_param=utils.run.train_steps = 102",
      "--gin_param=utils.run.save_checkpoints_steps = 102",
      "--gin_param=utils.run.iterations_per_loop = 102",
  )
  proc = cli_runs.run_cli(model_dir, flags, cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert "num_microbatches=2" in proc.stdout
  scalars = _event_scalars(model_dir)
  _check_layer_metrics(scalars, "encoder/block_000/layer_003")
  _check_layer_metrics(scalars, "decoder/block_000/layer_005")
