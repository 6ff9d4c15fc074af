"""The own corpus checked whole before training: every file, or the TFDS build.

Reading one example (the generic pre-flight check) sees only the start of
the first file; a binary file third in the glob, a bad byte on line 90,000
or a row without the text field would stop the run hours later. So the
pre-flight check of the own-corpus tasks reads every file of the split in
full (cached per file version) and asks TFDS about the dataset, its split
and its feature. Each problem is one sentence naming the file (and line or
record) or the binding, and the fix.
"""

import difflib
from typing import List

import seqio
import tensorflow.compat.v2 as tf
import tensorflow_datasets as tfds

from switch_mtf.tasks import corpus_files
from switch_mtf.tasks import own_corpus_config as config_lib


def problems(split: str) -> List[str]:
  """What would stop the bound corpus's `split` from being read."""
  try:
    config = config_lib.own_corpus()
    if config.format == "tfds":
      return tfds_problems(config, split)
    files = config_lib.split_files(config, split)
  except (ValueError, OSError) as e:
    return [str(e)]
  found = []
  for path in files:
    try:
      corpus_files.check_file(path, config)
    except (ValueError, OSError) as e:
      found.append(str(e))
  return found


def _unknown_dataset(name: str) -> str:
  base = name.partition(":")[0].partition("/")[0]
  close = difflib.get_close_matches(base, tfds.list_builders(), n=3)
  return ("own_corpus.tfds_name = %r: TFDS has no dataset %r%s; `python -c "
          "'import tensorflow_datasets as tfds; print(tfds.list_builders())'`"
          " lists them." % (name, base, " (did you mean %s?)" % ", ".join(
              close) if close else ""))


def _is_text(feature: tfds.features.FeatureConnector) -> bool:
  return (getattr(feature, "dtype", None) == tf.string
          and tuple(getattr(feature, "shape", ())) == ())


def tfds_problems(config: config_lib.CorpusConfig, split: str) -> List[str]:
  """The dataset exists at its version, is prepared, has split and feature."""
  name = config.tfds_name
  loader = seqio.TfdsDataSource(tfds_name=name,
                                tfds_data_dir=config.tfds_data_dir).tfds_dataset
  try:
    builder = loader.builder
  except tfds.core.registered.DatasetNotFoundError:
    return [_unknown_dataset(name)]
  except (AssertionError, ValueError) as e:
    return ["own_corpus.tfds_name = %r: %s. A version the installed TFDS "
            "code lacks is read from its prepared copy: point "
            "own_corpus.tfds_data_dir (or --t5_tfds_data_dir) at it."
            % (name, str(e).splitlines()[0])]
  if not builder.info.splits:
    return ["own_corpus.tfds_name = %r is not prepared (%s holds no data): "
            "build it (`tfds build %s --data_dir=<dir>`) or point "
            "own_corpus.tfds_data_dir (or --t5_tfds_data_dir) at a prepared "
            "copy." % (name, builder.data_dir, name.partition(":")[0])]
  found = []
  tfds_split = config.tfds_split(split)
  if tfds_split not in builder.info.splits:
    found.append(
        "TFDS dataset %r has no split %r (its splits: %s); map the %r split "
        "with own_corpus.tfds_splits = {%r: '<split>'}%s." % (
            name, tfds_split, sorted(builder.info.splits), split, split,
            " or hold out own_corpus.validation_fraction"
            if split == "validation" else ""))
  features = builder.info.features
  if config.text_key not in features:
    found.append(
        "TFDS dataset %r has no feature %r (own_corpus.text_key); its "
        "features are %s." % (name, config.text_key, sorted(features)))
  elif not _is_text(features[config.text_key]):
    found.append(
        "TFDS dataset %r: feature %r is %s, not one string; bind "
        "own_corpus.text_key to the feature holding the text." % (
            name, config.text_key, features[config.text_key]))
  return found
