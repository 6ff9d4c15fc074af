"""switch_mtf_transformer with every tensor of each session.run dumped.

tfdbg's DumpingDebugHook is appended to the Estimator's training hooks, so the
dumped runs are the CLI's own. The dump1-dump4 runs were:
  DUMP_ROOT=/tmp/det/dumpN .venv/bin/python results/determinism/dumprun.py \
    --model_dir=/tmp/det/dmN --module_import=switch_mtf.tasks \
    --gin_file=dataset.gin --gin_file=models/switch_tiny.gin \
    --gin_file=runs/demo_pretrain.gin --gin_file=runs/reliable.gin \
    --gin_param="MIXTURE_NAME='wiki_span_corruption'" \
    --gin_param=utils.run.train_steps=1 \
    --gin_param=utils.run.save_checkpoints_steps=200
(about 1.9 GB of dump per run).
"""
import os
import sys

from tensorflow.python import debug as tf_debug
from tensorflow_estimator.python.estimator import estimator

from switch_mtf.cli.launcher import console_entry_point

_train = estimator.Estimator.train


def _train_dumped(self, input_fn, hooks=None, **kwargs):
  hooks = list(hooks or []) + [tf_debug.DumpingDebugHook(os.environ["DUMP_ROOT"])]
  return _train(self, input_fn, hooks=hooks, **kwargs)


if __name__ == "__main__":
  estimator.Estimator.train = _train_dumped
  sys.argv[0] = "switch_mtf_transformer"
  sys.exit(console_entry_point())
