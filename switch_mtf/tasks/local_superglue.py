"""SuperGLUE tasks over local jsonl files (offline; the demo's fine-tuning).

Same text formats, postprocessors and metrics as the TFDS tasks
(superglue.py); only the source differs. The folder is the shipped copy
(`data/superglue`: BoolQ, CB, COPA, RTE, WSC) unless gin
`local_superglue_dir.path` or env SWITCH_MTF_SUPERGLUE_DIR names another in
the official layout `<Task>/{train,val}.jsonl`, e.g. the full SuperGLUE
release. The shipped BoolQ has no official train split: its train/val files
are a split of the official validation set by Wikipedia article
(superglue_data.py).
"""

import functools
from typing import Callable

import seqio
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
    "local_super_glue_rte": ("rte", "RTE"),
}
WSC_DIR = "WSC"
WSC_TRAIN_TASK = "local_super_glue_wsc_simple_train"
WSC_EVAL_TASK = "local_super_glue_wsc_simple_eval"
MIXTURE = "local_super_glue_proportional"


def load_split(config_name: str, task_dir: str, split: str,
               shuffle_files: bool, seed=None) -> tf.data.Dataset:
  """One split of a task from the configured folder, as TFDS examples."""
  del shuffle_files, seed  # One file per split; seqio shuffles examples.
  path = readers.split_file(readers.local_superglue_dir(), task_dir, split)
  return superglue_rows.to_dataset(
      superglue_rows.read_examples(config_name, path))


def count_train_examples(config_name: str, task_dir: str,
                         positives_only: bool = False) -> int:
  """Training examples a task yields (WSC simple-train keeps positives)."""
  path = readers.split_file(readers.local_superglue_dir(), task_dir, "train")
  examples = superglue_rows.read_examples(config_name, path)
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
      local=True,
      source=_source(_config, _dir, ("train", "validation")),
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
    source=_source(superglue.WSC_CONFIG, WSC_DIR, ("validation",)),
    output_features=vocab.output_features(),
    **superglue.wsc_simple_spec(train=False))

registry.add_mixture(
    MIXTURE,
    [(name, _proportional_rate(config, task_dir))
     for name, (config, task_dir) in GLUE_STYLE_TASKS.items()] +
    [(WSC_TRAIN_TASK, _proportional_rate(superglue.WSC_CONFIG, WSC_DIR,
                                         positives_only=True)),
     (WSC_EVAL_TASK, 0.0)])
