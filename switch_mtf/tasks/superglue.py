"""SuperGLUE as T5 (and so the Switch paper) fine-tunes on it, read from TFDS.

Text formats, postprocessors and metrics come from T5 itself (`glue_utils`,
`preprocessors`, `postprocessors`, `evaluation.metrics`), configured as T5's
`super_glue_*_v102` tasks are; the local tasks (local_superglue.py) reuse the
same specs so that only the source differs. WSC is run as T5 runs it: the
"simple" variant (train on correct referents only, evaluate by comparing the
predicted referent), together with DPR in the proportional mixture. AX-b and
AX-g, which T5 leaves without metrics, are scored as the leaderboard scores
them (superglue_metrics.py).
"""

import functools
from typing import Any, Dict

import seqio
from t5.data import glue_utils
from t5.data import postprocessors
from t5.data import preprocessors
from t5.evaluation import metrics
import tensorflow_datasets as tfds

from switch_mtf.tasks import registry
from switch_mtf.tasks import superglue_metrics
from switch_mtf.tasks import vocab

TFDS_VERSION = "1.0.2"
BUILDER_CONFIGS = tfds.text.super_glue.SuperGlue.builder_configs
WSC_CONFIG = "wsc.fixed"
# TFDS config -> our task name. AX-b and AX-g have only a test split.
GLUE_STYLE_TASKS = {
    "boolq": "super_glue_boolq",
    "cb": "super_glue_cb",
    "copa": "super_glue_copa",
    "multirc": "super_glue_multirc",
    "record": "super_glue_record",
    "rte": "super_glue_rte",
    "wic": "super_glue_wic",
    "axb": "super_glue_axb",
    "axg": "super_glue_axg",
}
DIAGNOSTIC_CONFIGS = ("axb", "axg")
WSC_TRAIN_TASK = "super_glue_wsc_simple_train"
WSC_EVAL_TASK = "super_glue_wsc_simple_eval"
DPR_TASK = "dpr_simple"
MIXTURE = "super_glue_proportional"
# Our name -> T5's, whose weight in T5's proportional mixture we reuse.
T5_TASK_NAMES = {
    **{ours: f"super_glue_{config}_v102"
       for config, ours in GLUE_STYLE_TASKS.items()},
    WSC_TRAIN_TASK: "super_glue_wsc_v102_simple_train",
    WSC_EVAL_TASK: "super_glue_wsc_v102_simple_eval",
    DPR_TASK: "dpr_v001_simple",
}

_TOKENIZE_AND_EOS = (
    seqio.preprocessors.tokenize,
    seqio.CacheDatasetPlaceholder(),
    seqio.preprocessors.append_eos_after_trim,
)


def glue_style_spec(config_name: str) -> Dict[str, Any]:
  """Preprocessors, postprocessor and metrics of T5's task for a config."""
  config = BUILDER_CONFIGS[config_name]
  text_preprocessors = []
  if config_name == "axb":
    # T5 casts AX-b as RTE, whose features are premise/hypothesis.
    text_preprocessors.append(functools.partial(
        preprocessors.rekey,
        key_map={"premise": "sentence1", "hypothesis": "sentence2",
                 "label": "label", "idx": "idx"}))
  text_preprocessors.append(glue_utils.get_glue_text_preprocessor(config))
  spec = {
      "preprocessors": text_preprocessors + list(_TOKENIZE_AND_EOS),
      "postprocess_fn": glue_utils.get_glue_postprocess_fn(config),
      "metric_fns": glue_utils.get_super_glue_metric(config_name),
  }
  # T5 gives the diagnostics no metrics; their files have labels, and the
  # leaderboard's metrics need nothing but those.
  if config_name == "axb":
    spec["metric_fns"] = superglue_metrics.AXB_METRICS
  elif config_name == "axg":
    spec["postprocess_fn"] = superglue_metrics.axg_postprocess
    spec["metric_fns"] = superglue_metrics.AXG_METRICS
  return spec


def wsc_simple_spec(train: bool) -> Dict[str, Any]:
  """T5's WSC "simple" formulation: predict the referent's text."""
  text_preprocessor = functools.partial(
      preprocessors.wsc_simple, correct_referent_only=train)
  spec = {"preprocessors": [text_preprocessor] + list(_TOKENIZE_AND_EOS)}
  if train:
    spec["metric_fns"] = []
  else:
    spec["postprocess_fn"] = postprocessors.wsc_simple
    spec["metric_fns"] = [metrics.accuracy]
  return spec


def _tfds_source(config_name: str, **kwargs) -> seqio.TfdsDataSource:
  return seqio.TfdsDataSource(
      tfds_name=f"super_glue/{config_name}:{TFDS_VERSION}", **kwargs)


for _config, _name in GLUE_STYLE_TASKS.items():
  registry.add_task(
      _name,
      source=_tfds_source(
          _config,
          splits=["test"] if _config in DIAGNOSTIC_CONFIGS else None),
      output_features=vocab.output_features(),
      **glue_style_spec(_config))

registry.add_task(
    WSC_TRAIN_TASK,
    source=_tfds_source(WSC_CONFIG, splits=["train"]),
    output_features=vocab.output_features(),
    **wsc_simple_spec(train=True))

registry.add_task(
    WSC_EVAL_TASK,
    source=_tfds_source(WSC_CONFIG, splits=["validation", "test"]),
    output_features=vocab.output_features(),
    **wsc_simple_spec(train=False))

registry.add_task(
    DPR_TASK,
    source=seqio.TfdsDataSource(tfds_name="definite_pronoun_resolution:1.1.0"),
    preprocessors=[preprocessors.definite_pronoun_resolution_simple] +
    list(_TOKENIZE_AND_EOS),
    output_features=vocab.output_features(),
    metric_fns=[metrics.accuracy])

# "Proportional": each task weighted by its number of training examples, the
# very numbers of T5's `super_glue_v102_proportional`.
_T5_WEIGHTS = glue_utils.get_super_glue_weight_mapping()
registry.add_mixture(
    MIXTURE, [(ours, _T5_WEIGHTS[t5_name])
              for ours, t5_name in T5_TASK_NAMES.items()])
