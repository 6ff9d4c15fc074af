"""TFDS as a reference, offline: prepared-data metadata and fixture rows.

`write_prepared_metadata` writes the metadata files a prepared dataset has
(features from the TFDS code, the split names of the prepared releases), so
that `tfds.testing.mock_data(policy=USE_FILES)` serves the read-only path
users take. `GeneratedExamples` are what TFDS's own `super_glue` builder
makes of an official jsonl file: its `_generate_examples`, then its feature
encoding and decoding, as for prepared data.
"""

import json
import os

import tensorflow.compat.v2 as tf
import tensorflow_datasets as tfds

from switch_mtf.tasks import superglue

# Datasets the TFDS tasks read, as (name in the TFDS code, version, splits).
PREPARED = [("c4/en", "3.0.1", ("train", "validation")),
            ("definite_pronoun_resolution", "1.1.0", ("train", "test"))] + [
                (f"super_glue/{config}", "1.0.2",
                 ("test",) if config in superglue.DIAGNOSTIC_CONFIGS else
                 ("train", "validation", "test"))
                for config in list(superglue.GLUE_STYLE_TASKS) + ["wsc.fixed"]]


def write_prepared_metadata(root: str) -> str:
  """Writes dataset_info.json etc. of every PREPARED dataset under root."""
  for name, version, splits in PREPARED:
    builder = tfds.builder(name, data_dir=os.path.join(root, "unused"))
    version_dir = os.path.join(root, name, version)
    os.makedirs(version_dir)
    builder.info.write_to_directory(version_dir)
    info_path = os.path.join(version_dir, "dataset_info.json")
    with open(info_path) as f:
      info = json.load(f)
    info["version"] = version
    info["splits"] = [{"name": split, "shardLengths": ["100"], "numBytes": "0"}
                      for split in splits]
    with open(info_path, "w") as f:
      json.dump(info, f)
  return root


class GeneratedExamples:
  """A TFDS super_glue builder's examples of an official file, serialized.

  Built from the builder's code (outside any mock: a mocked builder reads
  prepared metadata and has no generator); `dataset()` decodes them with
  the builder's features, as TFDS reads prepared data.
  """

  def __init__(self, config_name: str, path: str, split: str,
               data_dir: str):
    builder = tfds.builder(f"super_glue/{config_name}", data_dir=data_dir)
    self.features = builder.info.features
    # pylint: disable-next=protected-access
    generated = builder._generate_examples(data_file=path, split=split)
    self.serialized = [self.features.serialize_example(example)
                       for _, example in generated]

  def dataset(self) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(self.serialized).map(
        self.features.deserialize_example)
