"""Stopping a run at non-finite values, and never checkpointing them.

Sparse models are unstable in low precision (paper §2.4): a router whose
logits overflow puts NaN in its probabilities, then in the loss, and one
update later in every weight. The Estimator's own NanTensorHook stops on a
NaN loss (not inf) without saying where, and only after the checkpoint saver
of that step has run. Here:

- `NonFiniteGuard` fetches the loss and each Switch layer's router metrics
  (the mean top-1 probability, router entropy and load-balancing loss, which
  are non-finite exactly when some router probability is) and stops the run
  with the step, the layers whose routers went non-finite and the last good
  checkpoint, after `max_consecutive_bad_steps` bad steps in a row;
- `FiniteCheckpointListener` refuses to write a checkpoint whose weights are
  not all finite, so the last checkpoint is always one to resume from.
"""

import re
from typing import Dict, List

from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

from switch_mtf.layer import metrics

# Router metrics that are non-finite iff some router probability is.
ROUTER_METRICS = ("top1_probability_mean", "router_entropy",
                  "load_balancing_loss")
_ROUTER_TAG = re.compile(r"^%s/(?P<layer>.+)/(?P<metric>%s)$" % (
    re.escape(metrics.TAG_ROOT), "|".join(ROUTER_METRICS)))


class NonFiniteError(FloatingPointError):
  """Training produced a non-finite loss, router probability or weight."""


def router_metric_tensors(graph: tf.Graph) -> Dict[str, List[tf.Tensor]]:
  """Layer -> its router metric values, from the graph's scalar summaries.

  Only summaries of the current step count (no microbatching); with
  microbatching the metrics summarise the previous step and are skipped.
  """
  found = {}
  for summary in graph.get_collection(tf.GraphKeys.SUMMARIES):
    if summary.op.type != "ScalarSummary":
      continue
    tag = tf.get_static_value(summary.op.inputs[0])  # 0-d bytes array
    tag = tag.item() if isinstance(tag, np.ndarray) else tag
    match = _ROUTER_TAG.match(tag.decode() if isinstance(tag, bytes) else "")
    if match:
      found.setdefault(match.group("layer"), []).append(
          summary.op.inputs[1])
  return found


def last_checkpoint(model_dir: str) -> str:
  return tf.train.latest_checkpoint(model_dir) or "none (no checkpoint yet)"


class NonFiniteGuard(tf.train.SessionRunHook):
  """Stops training after N consecutive steps with non-finite values."""

  def __init__(self, model_dir: str, max_consecutive_bad_steps: int = 1):
    if max_consecutive_bad_steps < 1:
      raise ValueError(
          "max_consecutive_bad_steps=%r must be >= 1 (1 stops at the first "
          "non-finite step)." % (max_consecutive_bad_steps,))
    self._model_dir = model_dir
    self._max_bad = max_consecutive_bad_steps
    self._bad_in_a_row = 0
    self._step = 0
    self._fetches = {}

  def begin(self):
    graph = tf.get_default_graph()
    losses = graph.get_collection(tf.GraphKeys.LOSSES)
    self._fetches = {"loss": losses[0] if losses else None,
                     "routers": router_metric_tensors(graph)}
    self._fetches = {k: v for k, v in self._fetches.items() if v is not None}
    self._global_step = tf.train.get_global_step()

  def after_create_session(self, session, coord):
    del coord
    self._step = int(session.run(self._global_step))

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._fetches)

  def after_run(self, run_context, run_values):
    # The loss of the run that takes global step s to s + 1 is reported as
    # step s + 1, as Mesh TF's "step, tf_loss" log does.
    self._step += 1
    results = run_values.results
    loss = results.get("loss")
    bad_loss = loss is not None and not np.all(np.isfinite(loss))
    bad_layers = sorted(
        layer for layer, values in results.get("routers", {}).items()
        if not all(np.all(np.isfinite(v)) for v in values))
    if not bad_loss and not bad_layers:
      self._bad_in_a_row = 0
      return
    self._bad_in_a_row += 1
    message = "Non-finite values at step %d: loss %s; %s." % (
        self._step, loss,
        "router probabilities non-finite in layer(s) %s" % ", ".join(
            bad_layers) if bad_layers else "router probabilities finite")
    if self._bad_in_a_row < self._max_bad:
      logging.warning("%s (%d of %d bad steps in a row allowed)", message,
                      self._bad_in_a_row, self._max_bad)
      return
    raise NonFiniteError(
        "%s Training stopped after %d consecutive bad step(s). Last good "
        "checkpoint: %s. Rerun to resume from it, ideally with a smaller "
        "learning rate, float32 router (Switch.router_dtype) or router "
        "z-loss (Switch.router_z_loss_coef)."
        % (message, self._bad_in_a_row, last_checkpoint(self._model_dir)))


class FiniteCheckpointListener(tf.train.CheckpointSaverListener):
  """Raises instead of writing a checkpoint with non-finite weights.

  Must come after Mesh TF's listener, which copies the slices into the
  variables that are saved.
  """

  def __init__(self, model_dir: str):
    self._model_dir = model_dir
    self._variables = []
    self._finite = None

  def begin(self):
    self._variables = [v for v in tf.global_variables()
                       if v.dtype.base_dtype.is_floating]
    self._finite = [tf.reduce_all(tf.math.is_finite(v))
                    for v in self._variables]

  def before_save(self, session, global_step_value):
    finite = session.run(self._finite)
    bad = [v.op.name for v, ok in zip(self._variables, finite) if not ok]
    if bad:
      raise NonFiniteError(
          "Step %d: %d variable(s) hold non-finite values (%s%s); the "
          "checkpoint was not written. Last good checkpoint: %s."
          % (global_step_value, len(bad), ", ".join(bad[:5]),
             ", ..." if len(bad) > 5 else "", last_checkpoint(self._model_dir)))

