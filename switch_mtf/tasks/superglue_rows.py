"""Official SuperGLUE jsonl rows -> the examples TFDS `super_glue` yields.

The local tasks feed T5's preprocessors exactly what the TFDS builder would:
the builder config's text features, `idx`, and the label as a class id of
`label_classes` (COPA's 0/1 become "choice1"/"choice2"; JSON booleans become
"False"/"True"; WSC's `target` spans are lifted to the top level and then
repaired by TFDS's own `wsc.fixed` fix). Every row is validated, and a bad one
is reported with its file and line.
"""

from typing import Any, Dict, List, Sequence

import tensorflow.compat.v2 as tf
from tensorflow_datasets.text import super_glue as tfds_super_glue

from switch_mtf.tasks import readers
from switch_mtf.tasks import superglue

# Integer features of the TFDS builder (label is a ClassLabel: int64).
_INT32_FEATURES = ("idx", "span1_index", "span2_index")
_COPA_LABELS = {0: "choice1", 1: "choice2"}

Example = Dict[str, Any]


def _label_text(config_name: str, label: Any) -> str:
  """The TFDS class name for an official label value."""
  if config_name == "copa":
    # bool is an int subclass; COPA labels are plain 0/1. Lists and dicts
    # are unhashable, so test the type before the lookup.
    if not isinstance(label, int) or isinstance(label, bool) or (
        label not in _COPA_LABELS):
      raise ValueError(f"COPA label must be 0 or 1, got {label!r}")
    return _COPA_LABELS[label]
  if isinstance(label, bool):
    return "True" if label else "False"
  if isinstance(label, str):
    return label
  raise ValueError(f"label must be a string or a boolean, got {label!r}")


def to_example(config_name: str, row: Dict[str, Any], path: str,
               line_number: int) -> Example:
  """Converts one labelled official row of a TFDS config to its example."""
  config = superglue.BUILDER_CONFIGS[config_name]
  row = dict(row)
  if config_name.startswith("wsc"):
    readers.require_fields(row, ["target"], path, line_number)
    if not isinstance(row["target"], dict):
      raise ValueError(f"{path}:{line_number}: WSC `target` must be an "
                       f"object, got {row['target']!r}.")
    row.update(row["target"])
  readers.require_fields(row, list(config.features) + ["idx", "label"], path,
                         line_number)
  example = {}
  for feature in config.features:
    value = row[feature]
    expected = int if feature in _INT32_FEATURES else str
    if not isinstance(value, expected) or isinstance(value, bool):
      raise ValueError(
          f"{path}:{line_number}: field {feature!r} must be "
          f"{expected.__name__}, got {value!r}.")
    example[feature] = value
  if config_name == superglue.WSC_CONFIG:
    try:
      # pylint: disable-next=protected-access
      example = tfds_super_glue._fix_wst(example)
    except (AssertionError, IndexError) as e:
      raise ValueError(
          f"{path}:{line_number}: WSC span text is not in the text and "
          f"cannot be repaired: {example}") from e
  try:
    label_text = _label_text(config_name, row["label"])
    label = list(config.label_classes).index(label_text)
  except ValueError as e:
    raise ValueError(
        f"{path}:{line_number}: invalid label {row['label']!r} for "
        f"{config_name} (classes {list(config.label_classes)}): {e}") from e
  if not isinstance(row["idx"], int) or isinstance(row["idx"], bool):
    raise ValueError(f"{path}:{line_number}: `idx` must be an integer, got "
                     f"{row['idx']!r}.")
  example["idx"] = row["idx"]
  example["label"] = label
  return example


def read_examples(config_name: str, path: str) -> List[Example]:
  """All rows of an official jsonl file as TFDS-style examples."""
  return [to_example(config_name, row, path, line_number)
          for line_number, row in readers.read_jsonl(path)]


def to_dataset(examples: Sequence[Example]) -> tf.data.Dataset:
  """The examples as a tf.data.Dataset with the TFDS builder's dtypes."""
  columns = {}
  for key in examples[0]:
    values = [example[key] for example in examples]
    if key == "label":
      dtype = tf.int64
    elif key in _INT32_FEATURES:
      dtype = tf.int32
    else:
      dtype = tf.string
    columns[key] = tf.constant(values, dtype=dtype)
  return tf.data.Dataset.from_tensor_slices(columns)
