"""Experts split across devices compute what one device computes.

A placement mesh over four logical CPU devices (one session with
device_count={"CPU": 4}) with the layout rule experts:batch puts one expert on
each device and moves tokens between them (the all-to-all of paper §5.4);
adding expert_hidden:model and d_model_split:model also splits each expert's
FFN (Switch-XXL's expert + model + data parallelism).
"""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from switch_mtf.layer import switch as layer_lib
from tests.layer import layer_harness

B, L, M, E, H = 4, 8, 6, 4, 6
DEVICES = ["/cpu:%d" % i for i in range(4)]
FOUR_CPUS = tf.ConfigProto(device_count={"CPU": 4})
WI = "encoder/layer_000/MoE1D/wi/kernel"


def _run(dispatch_mode, routing="switch", **kwargs):
  rng = np.random.RandomState(0)
  x = rng.randn(B, L, M).astype(np.float32)
  sequence_id = np.ones([B, L], np.int32)
  sequence_id[1, 4:] = 0
  weights = {k.replace("switch_gating", routing + "_gating"): v for k, v in
             layer_harness.switch_weights(rng, M, E, H).items()}
  return layer_harness.run_layer(
      lambda: layer_lib.Switch(num_experts=E, hidden_size=H, group_size=8,
                               capacity_factor_train=1.0,
                               min_expert_capacity=1,
                               router_policy_train="argmax",
                               dispatch_mode=dispatch_mode,
                               routing=routing),
      x, sequence_id, weights, sgd_learning_rate=0.1, **kwargs)


def _assert_same_results(split, single):
  """Outputs, aux loss and trained weights agree to float32 rounding."""
  np.testing.assert_allclose(split.output, single.output, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(split.aux_loss, single.aux_loss, rtol=1e-6)
  for name, value in single.variables.items():
    np.testing.assert_allclose(split.variables[name], value, rtol=1e-5,
                               atol=1e-6, err_msg=name)


@pytest.mark.parametrize("dispatch_mode", ["einsum", "gather"])
@pytest.mark.parametrize("mesh_shape, layout, wi_slice", [
    ("batch:4", "batch:batch,experts:batch", (1, M, H)),
    ("batch:2,model:2",
     "batch:batch,experts:batch,expert_hidden:model,d_model_split:model",
     (2, M, H // 2)),
])
def test_split_experts_match_one_device(dispatch_mode, mesh_shape, layout,
                                        wi_slice):
  single = _run(dispatch_mode)
  split = _run(dispatch_mode, mesh_shape=mesh_shape, layout=layout,
               devices=DEVICES, session_config=FOUR_CPUS)
  # The experts really are spread: each device holds its own slice.
  placements = split.slices[WI]
  assert sorted(device for device, _ in placements) == [
      "/device:CPU:%d" % i for i in range(4)]
  assert {shape for _, shape in placements} == {wi_slice}
  _assert_same_results(split, single)


@pytest.mark.parametrize("dispatch_mode", [
    pytest.param("einsum", marks=pytest.mark.slow),  # CPU runs use gather
    "gather"])
@pytest.mark.parametrize("routing", ["switch_max", "ntlb",
                                     "expert_selection"])
def test_other_routings_split_over_devices_match_one_device(dispatch_mode,
                                                            routing):
  single = _run(dispatch_mode, routing)
  split = _run(dispatch_mode, routing, mesh_shape="batch:4",
               layout="batch:batch,experts:batch", devices=DEVICES,
               session_config=FOUR_CPUS)
  _assert_same_results(split, single)
