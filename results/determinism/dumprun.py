import sys, re, os
from tensorflow.python import debug as tf_debug
from tensorflow_estimator.python.estimator import estimator as est
dump_root = os.environ["DUMP_ROOT"]
_train = est.Estimator.train
def train(self, input_fn, hooks=None, steps=None, max_steps=None, saving_listeners=None):
  hooks = list(hooks or []) + [tf_debug.DumpingDebugHook(dump_root)]
  return _train(self, input_fn, hooks=hooks, steps=steps, max_steps=max_steps, saving_listeners=saving_listeners)
est.Estimator.train = train
from switch_mtf.cli.launcher import console_entry_point
sys.argv[0] = "switch_mtf_transformer"
sys.exit(console_entry_point())
