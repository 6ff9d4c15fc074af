"""SuperGLUE tasks over local jsonl files (offline; the demo's fine-tuning).

Same text formats, postprocessors and metrics as the TFDS tasks
(superglue.py); only the source differs. The folder is the shipped copy
(`data/superglue`: BoolQ, CB, COPA, RTE, WSC; train and val only) unless gin
`local_superglue_dir.path` or env SWITCH_MTF_SUPERGLUE_DIR names another in
the official layout `<Task>/{train,val,test}.jsonl` plus
`AX-b/AX-b.jsonl` and `AX-g/AX-g.jsonl`, e.g. the full SuperGLUE release.
Registration reads nothing, so a task whose files are missing fails, naming
the file, only when it is used. The shipped BoolQ has no official train
split: its train/val files are a split of the official validation set by
Wikipedia article (superglue_data.py).
"""

import functools
import os
from typing import Callable, Sequence

import seqio
from t5.data import glue_utils
import tensorflow.compat.v2 as tf

from switch_mtf.tasks import readers
from switch_mtf.tasks import registry
from switch_mtf.tasks import superglue
from switch_mtf.tasks import superglue_rows
from switch_mtf.tasks import vocab

# Our task name -> (TFDS config whose format it uses, folder in the layout).
GLUE_STYLE_TASKS = {
    "local_super_glue_boolq": ("boolq", "BoolQ"),
    "local_super_glue_cb": ("cb", "CB"),
    "local_super_glue_copa": ("copa", "COPA"),
    "local_super_glue_multirc": ("multirc", "MultiRC"),
    "local_super_glue_record": ("record", "ReCoRD"),
    "local_super_glue_rte": ("rte", "RTE"),
    "local_super_glue_wic": ("wic", "WiC"),
    "local_super_glue_axb": ("axb", "AX-b"),
    "local_super_glue_axg": ("axg", "AX-g"),
}
# The tasks whose data is shipped (with WSC): the embedded, offline ones.
SHIPPED_TASKS = ("local_super_glue_boolq", "local_super_glue_cb",
                 "local_super_glue_copa", "local_super_glue_rte")
# The diagnostics have one file, `<Task>/<Task>.jsonl`: the test split.
DIAGNOSTIC_DIRS = ("AX-b", "AX-g")
WSC_DIR = "WSC"
WSC_TRAIN_TASK = "local_super_glue_wsc_simple_train"
WSC_EVAL_TASK = "local_super_glue_wsc_simple_eval"
# The shipped tasks, weighted by the examples of the folder in use.
MIXTURE = "local_super_glue_proportional"
# Every task, weighted as T5's `super_glue_v102_proportional`.
ALL_TASKS_MIXTURE = "local_super_glue_all_proportional"
# Our name -> T5's, as for the TFDS tasks; DPR is no SuperGLUE file.
T5_TASK_NAMES = {"local_" + ours: t5_name
                 for ours, t5_name in superglue.T5_TASK_NAMES.items()
                 if ours != superglue.DPR_TASK}


def split_file(task_dir: str, split: str) -> str:
  """The file of a split in the configured folder; it must exist."""
  data_dir = readers.local_superglue_dir()
  if split != "test":
    return readers.split_file(data_dir, task_dir, split)
  stem = os.path.join(data_dir, task_dir,
                      task_dir if task_dir in DIAGNOSTIC_DIRS else "test")
  for path in (stem + ".jsonl", stem + ".jsonl.gz"):
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(
      f"{stem}.jsonl (or .jsonl.gz) not found: the 'test' split of "
      f"{task_dir} needs it in the SuperGLUE folder {data_dir}. Point "
      f"{readers.SUPERGLUE_DIR_ENV_VAR} (or gin `local_superglue_dir.path`) "
      "at a folder in the official layout.")


def task_splits(task_dir: str) -> Sequence[str]:
  return ("test",) if task_dir in DIAGNOSTIC_DIRS else (
      "train", "validation", "test")


def load_split(config_name: str, task_dir: str, split: str,
               shuffle_files: bool, seed=None) -> tf.data.Dataset:
  """One split of a task from the configured folder, as TFDS examples."""
  del shuffle_files, seed  # One file per split; seqio shuffles examples.
  # Test rows have no labels (the diagnostics' have); TFDS gives them -1.
  return superglue_rows.to_dataset(superglue_rows.read_examples(
      config_name, split_file(task_dir, split),
      labels_required=split != "test"))


def count_train_examples(config_name: str, task_dir: str,
                         positives_only: bool = False) -> int:
  """Training examples a task yields (WSC simple-train keeps positives)."""
  examples = superglue_rows.read_examples(config_name,
                                          split_file(task_dir, "train"))
  if positives_only:
    examples = [e for e in examples if e["label"] == 1]
  return len(examples)


def _proportional_rate(config_name: str, task_dir: str,
                       positives_only: bool = False) -> Callable[..., float]:
  # A function, so that the folder chosen at run time sets the rates.
  def rate(task: seqio.Task) -> float:
    del task
    return float(count_train_examples(config_name, task_dir, positives_only))
  return rate


def _source(config_name: str, task_dir: str, splits) -> seqio.DataSource:
  return seqio.FunctionDataSource(
      functools.partial(load_split, config_name, task_dir), splits=splits)


for _name, (_config, _dir) in GLUE_STYLE_TASKS.items():
  registry.add_task(
      _name,
      local=_name in SHIPPED_TASKS,
      source=_source(_config, _dir, task_splits(_dir)),
      output_features=vocab.output_features(),
      **superglue.glue_style_spec(_config))

registry.add_task(
    WSC_TRAIN_TASK,
    local=True,
    source=_source(superglue.WSC_CONFIG, WSC_DIR, ("train",)),
    output_features=vocab.output_features(),
    **superglue.wsc_simple_spec(train=True))

registry.add_task(
    WSC_EVAL_TASK,
    local=True,
    source=_source(superglue.WSC_CONFIG, WSC_DIR, ("validation", "test")),
    output_features=vocab.output_features(),
    **superglue.wsc_simple_spec(train=False))

registry.add_mixture(
    MIXTURE,
    [(name, _proportional_rate(*GLUE_STYLE_TASKS[name]))
     for name in SHIPPED_TASKS] +
    [(WSC_TRAIN_TASK, _proportional_rate(superglue.WSC_CONFIG, WSC_DIR,
                                         positives_only=True)),
     (WSC_EVAL_TASK, 0.0)])

# T5's weights are the official training-set sizes, so they need no reading.
_T5_WEIGHTS = glue_utils.get_super_glue_weight_mapping()
registry.add_mixture(
    ALL_TASKS_MIXTURE,
    [(ours, _T5_WEIGHTS[t5_name]) for ours, t5_name in T5_TASK_NAMES.items()])
