"""A worker task: hosts mesh devices for a chief until it is stopped.

    python -m switch_mtf.cluster.worker --chief=HOST:PORT \
        --workers=HOST:PORT,HOST:PORT --task=0 --cpus=2

Starts one `tf.distribute.Server` for task `--task` of job `worker` with
`--cpus` logical CPU devices and serves until killed; the chief
(`switch_mtf_transformer` with a `layouts/cluster-*.gin`) places mesh slices
on its devices. Every task must be given the same --chief and --workers.
"""

import argparse
import os
import sys
from typing import List, Optional

from switch_mtf.cluster import spec as spec_lib

# Printed once the server listens; launchers wait for it.
READY = "switch_mtf worker ready"


def start_server(cluster: spec_lib.Cluster, task: int):
  """The task's tf.distribute.Server, started; clear errors before that."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  if not 0 <= task < len(cluster.workers):
    raise ValueError("--task=%d, but --workers lists %d task(s) (0 to %d)."
                     % (task, len(cluster.workers), len(cluster.workers) - 1))
  config = tf.ConfigProto(device_count={"CPU": cluster.devices_per_worker})
  try:
    return tf.distribute.Server(cluster.cluster_spec(),
                                job_name=spec_lib.WORKER, task_index=task,
                                config=config, start=True)
  except tf.errors.OpError as e:
    raise RuntimeError(
        "worker task %d could not listen at %s (%s); is the port in use? "
        "Free it or give every task another --workers list."
        % (task, cluster.task_address(task), e.message.splitlines()[0]))


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--chief", required=True,
                      help="host:port of the chief (switch_mtf_transformer).")
  parser.add_argument("--workers", required=True,
                      help="comma list of every worker's host:port, in "
                      "task order.")
  parser.add_argument("--task", type=int, required=True,
                      help="this worker's index in --workers.")
  parser.add_argument("--cpus", type=int, default=1,
                      help="logical CPU devices of each worker (mesh devices "
                      "per task).")
  args = parser.parse_args(argv)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  try:
    cluster = spec_lib.from_args(args.chief, args.workers, args.cpus)
    server = start_server(cluster, args.task)
  except (ValueError, RuntimeError) as e:
    print("error: %s" % e, file=sys.stderr)
    return 2
  print("%s: task %d at %s, %d CPU device(s)" % (
      READY, args.task, cluster.task_address(args.task), args.cpus),
        flush=True)
  server.join()
  return 0


if __name__ == "__main__":
  sys.exit(main())
