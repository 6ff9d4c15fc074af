"""Decoding a trained Switch model gives the tokens a teacher-forced pass gives.

Switch-Tiny (models/switch_tiny.gin, 8 experts) with a decoder of
encoder-decoder attention and the Switch layer only, so the experts are the
decoder's only non-linear path, is trained in process to continue a chain
x, P(x), P(P(x)), ... of a fixed permutation P from its first token, then
decoded greedily at the paper's eval capacity factor 2.0. Incremental
decoding routes one token per sequence per step, so each step's 64 tokens
form one group. With the default `Switch.decode_without_drops` no token is
dropped, so every decoded token must be the argmax of a teacher-forced pass
of the same model over the decoded sequence (with no drops either). Under
Mesh TF's rule (the knob off) overflow tokens skip the experts, cannot apply
P, and the decode departs from the teacher-forced argmax.
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

tf.disable_v2_behavior()

VOCAB = 40  # Mesh TF pads the softmax to 128
EOS = 1
BATCH, LENGTH, TRAIN_STEPS = 16, 8, 300
DECODE_BATCH = 64
NUM_EXPERTS = 8
LAYOUT = "batch:batch,experts:batch"
MESH_SHAPE = "batch:1"
# No drops anywhere in the teacher-forced pass and the encoder: every expert
# has the whole group as capacity. The decode graph sets the decoder back to
# the paper's eval factor.
NO_DROPS = "Switch.capacity_factor_eval = %d.0" % NUM_EXPERTS
DECODER_AT_EVAL_FACTOR = "decoder/Switch.capacity_factor_eval = 2.0"
_LAYERS = "mesh_tensorflow.transformer.transformer_layers"
DECODER_LAYERS = (
    "decoder/transformer.make_layer_stack.layers = ["
    "@%s.EncDecAttention, @switch_mtf.Switch]" % (_LAYERS,))


PERMUTATION = np.random.RandomState(5).permutation(VOCAB - 2) + 2


def _starts(seed, batch=BATCH):
  """Inputs: one random token, then EOS."""
  ids = np.zeros([batch, LENGTH], np.int32)
  ids[:, 0] = np.random.RandomState(seed).randint(2, VOCAB, size=batch)
  ids[:, 1] = EOS
  return ids


def _chains(inputs):
  """Targets: x, P(x), P(P(x)), ... then EOS."""
  targets = np.zeros_like(inputs)
  targets[:, 0] = inputs[:, 0]
  for t in range(1, LENGTH - 2):
    targets[:, t] = PERMUTATION[targets[:, t - 1] - 2]
  targets[:, LENGTH - 2] = EOS
  return targets


def _parse(*bindings):
  gin.clear_config()
  gin_paths.add_gin_search_path()
  gin.add_config_file_search_path(
      os.path.join(os.path.dirname(transformer.__file__), "gin"))
  gin.parse_config_files_and_bindings(
      ["defaults.gin", "models/switch_tiny.gin"],
      ["dropout_rate = 0.0", "Unitransformer.max_length = %d" % LENGTH,
       "num_experts = %d" % NUM_EXPERTS, DECODER_LAYERS, *bindings])


class _Graph:
  """A mesh graph of the gin-configured model on one placement device."""

  def __init__(self):
    self.graph = mtf.Graph()
    self.mesh = mtf.Mesh(self.graph, "mesh")
    self.model = transformer.make_bitransformer(
        input_vocab_size=VOCAB, output_vocab_size=VOCAB,
        layout=mtf.convert_to_layout_rules(LAYOUT),
        mesh_shape=mtf.convert_to_shape(MESH_SHAPE))

  def tokens(self, ids, name):
    shape = mtf.Shape([mtf.Dimension("batch", ids.shape[0]),
                       mtf.Dimension("length", LENGTH)])
    return mtf.import_fully_replicated(self.mesh, tf.constant(ids), shape,
                                       name=name)

  def lower(self):
    impl = placement_mesh_impl.PlacementMeshImpl(
        mtf.convert_to_shape(MESH_SHAPE),
        mtf.convert_to_layout_rules(LAYOUT), [""])
    return mtf.Lowering(self.graph, {self.mesh: impl})


def _train(checkpoint):
  """Trains on fresh chain batches; saves to `checkpoint`; returns last loss."""
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    g = _Graph()
    feeds = [tf.placeholder(tf.int32, [BATCH, LENGTH]) for _ in range(2)]
    shape = mtf.Shape([mtf.Dimension("batch", BATCH),
                       mtf.Dimension("length", LENGTH)])
    inputs, targets = [
        mtf.import_fully_replicated(g.mesh, feed, shape, name=name)
        for feed, name in zip(feeds, ("inputs", "targets"))]
    _, loss = g.model.call_simple(inputs, targets, compute_loss=True,
                                  mode=tf.estimator.ModeKeys.TRAIN)
    variables = g.graph.trainable_variables
    grads = mtf.gradients([loss], [v.outputs[0] for v in variables])
    tf.train.get_or_create_global_step()
    updates = mtf.optimize.AdafactorOptimizer(
        learning_rate=0.01).apply_grads(grads, variables)
    lowering = g.lower()
    tf_loss = lowering.export_to_tf_tensor(loss)
    train_op = tf.group([lowering.lowered_operation(op) for op in updates])
    saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(lowering.copy_masters_to_slices())
      for step in range(TRAIN_STEPS):
        last_loss, _ = sess.run([tf_loss, train_op],
                                dict(zip(feeds, (_starts(step),
                                                  _chains(_starts(step))))))
      sess.run(lowering.copy_slices_to_masters())
      saver.save(sess, checkpoint)
  return float(last_loss)


def _run(checkpoint, build):
  """Builds `build(graph) -> mtf tensor` in a new graph; returns its value."""
  with tf.Graph().as_default():
    g = _Graph()
    output = build(g)
    lowering = g.lower()
    tf_output = lowering.export_to_tf_tensor(output)
    saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as sess:
      saver.restore(sess, checkpoint)
      sess.run(lowering.copy_masters_to_slices())
      return sess.run(tf_output)


def _decode(checkpoint, inputs, *bindings):
  _parse(NO_DROPS, DECODER_AT_EVAL_FACTOR, *bindings)
  return _run(checkpoint, lambda g: g.model.decode(
      g.tokens(inputs, "inputs"), temperature=0.0))


def _teacher_forced_argmax(checkpoint, inputs, targets):
  _parse(NO_DROPS)
  def build(g):
    logits, _ = g.model.call_simple(
        g.tokens(inputs, "inputs"), g.tokens(targets, "targets"),
        compute_loss=True, mode=tf.estimator.ModeKeys.EVAL)
    return mtf.argmax(logits, g.model.decoder.output_vocab_dim)
  return _run(checkpoint, build)


def _until_eos(ids):
  """Each row up to and including its first EOS (the rest is padding)."""
  rows = []
  for row in ids:
    ends = np.flatnonzero(row == EOS)
    rows.append(row[:ends[0] + 1] if ends.size else row)
  return rows


@pytest.fixture(scope="module", name="trained")
def fixture_trained(tmp_path_factory):
  checkpoint = str(tmp_path_factory.mktemp("decode") / "model.ckpt")
  try:
    _parse(NO_DROPS)
    loss = _train(checkpoint)
  finally:
    gin.clear_config()
  assert loss < 0.1, "the chain task did not train (loss %.3f)" % loss
  yield checkpoint
  gin.clear_config()


def _decode_vs_teacher_forced(checkpoint, *bindings):
  inputs = _starts(10_000, DECODE_BATCH)
  decoded = _decode(checkpoint, inputs, *bindings)
  argmax = _teacher_forced_argmax(checkpoint, inputs, decoded)
  return _until_eos(decoded), _until_eos(argmax)


def test_decode_yields_the_teacher_forced_argmax(trained):
  decoded, argmax = _decode_vs_teacher_forced(trained)
  for row, (ours, forced) in enumerate(zip(decoded, argmax)):
    np.testing.assert_array_equal(ours, forced[:len(ours)],
                                  err_msg="sequence %d" % row)


def test_mesh_tf_rule_drops_tokens_and_departs_from_it(trained):
  """The knob off reproduces the bug the default fixes (a mutant check)."""
  decoded, argmax = _decode_vs_teacher_forced(
      trained, "Switch.decode_without_drops = False")
  differ = [row for row, (ours, forced) in enumerate(zip(decoded, argmax))
            if not np.array_equal(ours, forced[:len(ours)])]
  assert differ, "no sequence departed from the teacher-forced argmax"
