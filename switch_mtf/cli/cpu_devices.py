"""Several logical CPU devices for placement-mesh runs of the t5 CLI.

Mesh TF's placement mesh puts mesh slice i on `utils.run.mesh_devices[i]`.
TensorFlow creates one CPU device unless the session config asks for more,
and off TPU `utils.run` builds its Estimator without a session config, so the
Estimator's default one is used: one CPU, soft placement on. Names such as
"cpu:3" then silently land on CPU:0 and a 4-way mesh runs on one device.

`logical_cpu_devices` makes every Estimator session have N CPU devices and
returns their names, for a gin binding (see gin/layouts/cpu-4_*.gin):

    utils.run.mesh_devices = @switch_mtf.logical_cpu_devices()
    switch_mtf.logical_cpu_devices.num_devices = 4

gin evaluates the reference when `utils.run` is called, before the Estimator
is built. The devices share the machine's cores: this tests placement and
the communication Mesh TF inserts between slices, not speed.
"""

from typing import Callable, List

import gin
import tensorflow.compat.v1 as tf
from tensorflow_estimator.python.estimator import run_config

# The Estimator's own default, kept so that repeated calls do not stack.
_ESTIMATOR_DEFAULT: Callable[[], tf.ConfigProto] = (
    run_config.get_default_session_config)


def session_config(num_devices: int) -> tf.ConfigProto:
  """The Estimator's default session config with `num_devices` CPUs."""
  config = _ESTIMATOR_DEFAULT()
  config.device_count["CPU"] = num_devices
  return config


@gin.configurable(module="switch_mtf")
def logical_cpu_devices(num_devices: int = gin.REQUIRED) -> List[str]:
  """Gives Estimator sessions `num_devices` CPUs; returns their names."""
  if not isinstance(num_devices, int) or num_devices < 1:
    raise ValueError(
        "logical_cpu_devices.num_devices must be a positive integer (the size "
        "of utils.run.mesh_shape), got %r." % (num_devices,))
  # The Estimator reads this module attribute when it is constructed
  # without a session config, which is what utils.run does off TPU.
  run_config.get_default_session_config = lambda: session_config(num_devices)
  return ["cpu:%d" % i for i in range(num_devices)]
