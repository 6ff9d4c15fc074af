"""A CLI run whose mesh spans TensorFlow server tasks (issue 20).

The chief is `switch_mtf_transformer` itself; each worker is a process that
only hosts mesh devices (`python -m switch_mtf.cluster.worker`). TensorFlow's
distributed runtime (gRPC) moves the tensors Mesh TF sends between slices on
different tasks; nothing here transports data.

  spec      the cluster: addresses, tasks, device names, TF_CONFIG
  worker    the worker process: one tf.distribute.Server
  devices   the gin configurable the layouts bind `utils.run.mesh_devices`
            to: starts the chief's server, checks the workers, watches them
  local     starts and stops a whole cluster on this machine (tests, tools)

May import: switch_mtf.cli.
"""
