"""Parity with Mesh TF's own MoE1D(moe_gating="switch"), and checkpoints.

Same weights and inputs through both layers give the same outputs and aux
loss in both dispatch modes (argmax; the random policies are
test_routing_variants_vs_moe1d.py's), and checkpoints written by one
restore into the other with identical outputs, both ways.
"""

import os

from mesh_tensorflow.transformer import moe
import numpy as np
import pytest

from switch_mtf.layer import switch as layer_lib
from tests.layer import layer_harness

B, L, M, E, H = 4, 8, 6, 4, 5
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "geglu": ["gelu", "linear"]}
MODES = ("einsum", "gather")


def _moe1d(activation="relu", **kwargs):
  return lambda: moe.MoE1D(  # pylint: disable=g-long-lambda
      moe_gating="switch", num_experts=E, hidden_size=H,
      switch_policy_train="argmax", switch_policy_eval="argmax",
      activation=ACTIVATIONS[activation], **kwargs)


def _switch(activation="relu", **kwargs):
  return lambda: layer_lib.Switch(  # pylint: disable=g-long-lambda
      num_experts=E, hidden_size=H, router_policy_train="argmax",
      activation=activation, **kwargs)


def _data(seed=0, activation="relu"):
  rng = np.random.RandomState(seed)
  x = rng.randn(B, L, M).astype(np.float32)
  sequence_id = np.ones([B, L], np.int32)
  sequence_id[0, 6:] = 0
  sequence_id[2, 1:] = 0
  weights = layer_harness.switch_weights(rng, M, E, H,
                                         gated=activation == "geglu")
  weights["encoder/layer_000/MoE1D/switch_gating/kernel"][:, 0] += 0.4
  return x, sequence_id, weights


@pytest.mark.parametrize("activation, mode, microbatches, group_size", [
    ("relu", layer_harness.TRAIN, 1, 16),
    ("gelu", layer_harness.EVAL, 1, 8),
    ("geglu", layer_harness.TRAIN, 2, 32),
])
def test_same_outputs_and_loss_as_moe1d(activation, mode, microbatches,
                                        group_size):
  x, sequence_id, weights = _data(activation=activation)
  common = dict(group_size=group_size, capacity_factor_train=1.0,
                min_expert_capacity=1)
  theirs = layer_harness.run_layer(_moe1d(activation, **common), x,
                                   sequence_id, weights, mode=mode,
                                   num_microbatches=microbatches)
  assert np.abs(theirs.output).sum(-1).min() == 0  # some tokens dropped
  for dispatch_mode in MODES:
    ours = layer_harness.run_layer(
        _switch(activation, dispatch_mode=dispatch_mode, **common), x,
        sequence_id, weights, mode=mode, num_microbatches=microbatches)
    np.testing.assert_allclose(ours.output, theirs.output, rtol=1e-6,
                               atol=1e-7, err_msg=dispatch_mode)
    np.testing.assert_allclose(ours.aux_loss, theirs.aux_loss, rtol=1e-6,
                               err_msg=dispatch_mode)


def test_router_z_loss_matches_moe1d_z_loss_times_loss_coef():
  # MoE1D scales its z-loss by loss_coef (reference §1.7); ours has its own
  # coefficient, so MoE1D.z_loss = z equals router_z_loss_coef = z * coef.
  x, sequence_id, weights = _data(seed=3)
  theirs = layer_harness.run_layer(_moe1d(loss_coef=0.01, z_loss=0.5), x,
                                   sequence_id, weights, num_microbatches=2)
  ours = layer_harness.run_layer(
      _switch(loss_coef=0.01, router_z_loss_coef=0.005), x, sequence_id,
      weights, num_microbatches=2)
  without_z = layer_harness.run_layer(_switch(loss_coef=0.01), x,
                                      sequence_id, weights,
                                      num_microbatches=2)
  assert ours.aux_loss > without_z.aux_loss * 1.5
  np.testing.assert_allclose(ours.aux_loss, theirs.aux_loss, rtol=1e-6)


def test_one_training_step_matches_moe1d_and_moves_every_weight():
  x, sequence_id, weights = _data(seed=1)
  theirs = layer_harness.run_layer(_moe1d(), x, sequence_id, weights,
                                   sgd_learning_rate=0.1)
  for dispatch_mode in MODES:
    ours = layer_harness.run_layer(_switch(dispatch_mode=dispatch_mode), x,
                                   sequence_id, weights,
                                   sgd_learning_rate=0.1)
    for name, value in ours.variables.items():
      # Gradients reach the router (through the gate and the aux loss) and
      # every expert weight.
      assert not np.allclose(value, ours.initial_variables[name]), name
      np.testing.assert_allclose(value, theirs.variables[name], rtol=1e-5,
                                 atol=1e-6, err_msg=name + dispatch_mode)


def test_checkpoints_restore_between_moe1d_and_switch(tmp_path):
  x, sequence_id, weights = _data(seed=2)
  moe1d_ckpt = os.path.join(tmp_path, "moe1d", "model.ckpt")
  switch_ckpt = os.path.join(tmp_path, "switch", "model.ckpt")
  # Train a few steps with MoE1D, restore into Switch.
  layer_harness.run_layer(_moe1d(), x, sequence_id, weights,
                          sgd_learning_rate=0.1, train_steps=3,
                          save_to=moe1d_ckpt)
  theirs = layer_harness.run_layer(_moe1d(), x, sequence_id,
                                   restore_from=moe1d_ckpt)
  ours = layer_harness.run_layer(_switch(), x, sequence_id,
                                 restore_from=moe1d_ckpt,
                                 sgd_learning_rate=0.1, train_steps=3,
                                 save_to=switch_ckpt)
  assert not np.allclose(theirs.initial_variables[
      "encoder/layer_000/MoE1D/wo/kernel"],
                         weights["encoder/layer_000/MoE1D/wo/kernel"])
  np.testing.assert_array_equal(ours.output, theirs.output)
  # ... and back: Switch's checkpoint restores into MoE1D.
  theirs_back = layer_harness.run_layer(_moe1d(), x, sequence_id,
                                        restore_from=switch_ckpt)
  ours_back = layer_harness.run_layer(_switch(), x, sequence_id,
                                      restore_from=switch_ckpt)
  assert not np.allclose(ours_back.output, ours.output)  # it trained
  np.testing.assert_array_equal(theirs_back.output, ours_back.output)
