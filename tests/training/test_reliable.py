"""Pieces of the guarded run that need no CLI run: its seed, its saver hook.

`reliable_train_model` seeds the data order itself, so without resolve_seed
a `mesh_train_dataset_fn.seed` binding (the demo's and the claims' paired
data orders) would silently be replaced by seed 0. Its saver hook writes
checkpoints like Mesh TF's but not the extra copies of the graph.
"""

import os

import gin
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.cli import launcher
from switch_mtf.training import reliable

# Registers mesh_train_dataset_fn with gin, as the CLI does (torch-free).
launcher.import_t5_models_without_torch()
from t5.models import mesh_transformer  # pylint: disable=g-import-not-at-top,unused-import,wrong-import-position


@pytest.fixture(autouse=True)
def clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _resolve(*bindings):
  gin.parse_config(list(bindings))
  return reliable.resolve_seed(
      gin.query_parameter("switch_mtf.reliable_train_model.seed")
      if "reliable_train_model.seed" in " ".join(bindings) else 0)


def test_default_seed_is_zero():
  assert _resolve() == 0


def test_a_data_seed_binding_seeds_the_guarded_run():
  assert _resolve("mesh_train_dataset_fn.seed = 1234") == 1234


def test_our_seed_alone_is_used():
  assert _resolve("switch_mtf.reliable_train_model.seed = 7") == 7


def test_agreeing_bindings_are_accepted_and_disagreeing_refused():
  assert _resolve("mesh_train_dataset_fn.seed = 5",
                  "switch_mtf.reliable_train_model.seed = 5") == 5
  with pytest.raises(ValueError, match="disagree"):
    _resolve("mesh_train_dataset_fn.seed = 5",
             "switch_mtf.reliable_train_model.seed = 6")


def test_an_unseeded_data_binding_keeps_our_seed():
  # demo_pretrain.gin-style None: T5's unseeded default, not a seed.
  assert _resolve("mesh_train_dataset_fn.seed = None") == 0


def _train_two_steps(model_dir, make_hook):
  """A one-variable graph trained 2 steps under a saver hook; its files."""
  with tf.Graph().as_default():
    step = tf.train.get_or_create_global_step()
    weight = tf.get_variable("w", initializer=1.0)
    train_op = tf.group(weight.assign_add(1.0), step.assign_add(1))
    saver = tf.train.Saver()
    hook = make_hook(model_dir, save_steps=1, saver=saver)
    with tf.train.MonitoredSession(hooks=[hook]) as session:
      for _ in range(2):
        session.run(train_op)
    tf.summary.FileWriterCache.clear()  # flushes the events file
  return hook, sorted(os.listdir(model_dir))


def test_saver_hook_writes_checkpoints_but_no_graph_copies(tmp_path):
  with reliable.checkpoints_without_graph():
    hook, files = _train_two_steps(str(tmp_path / "guarded"),
                                   tf.train.CheckpointSaverHook)
  # The Estimator looks for saver hooks by the class it knows.
  assert isinstance(hook, tf.train.CheckpointSaverHook)
  assert tf.train.CheckpointSaverHook.__name__ == "CheckpointSaverHook"
  assert "graph.pbtxt" not in files
  assert not [f for f in files if f.endswith(".meta")]
  # The starting step's checkpoint and one per step, as Mesh TF's hook.
  assert [f for f in files if f.endswith(".index")] == [
      "model.ckpt-0.index", "model.ckpt-1.index", "model.ckpt-2.index"]
  reader = tf.train.load_checkpoint(str(tmp_path / "guarded" / "model.ckpt-2"))
  assert reader.get_tensor("w") == 3.0
  # One graph (and meta graph) in the events file, for TensorBoard; Mesh
  # TF's hook adds a second copy of each.
  assert _graph_events(str(tmp_path / "guarded")) == {"graph_def": 1,
                                                       "meta_graph_def": 1}


def _graph_events(model_dir):
  counts = {}
  for name in os.listdir(model_dir):
    if name.startswith("events.out.tfevents"):
      for event in tf.train.summary_iterator(os.path.join(model_dir, name)):
        for kind in ("graph_def", "meta_graph_def"):
          if event.HasField(kind):
            counts[kind] = counts.get(kind, 0) + 1
  return counts


def test_saver_hook_writes_the_graph_when_asked(tmp_path):
  with reliable.checkpoints_without_graph():
    _, files = _train_two_steps(
        str(tmp_path / "asked"),
        lambda *a, **k: tf.train.CheckpointSaverHook(  # pylint: disable=g-long-lambda
            *a, save_graph_def=True, **k))
  assert "graph.pbtxt" in files and "model.ckpt-2.meta" in files
  assert _graph_events(str(tmp_path / "asked")) == {"graph_def": 2,
                                                     "meta_graph_def": 2}
