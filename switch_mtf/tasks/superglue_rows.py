"""Official SuperGLUE jsonl rows -> the examples TFDS `super_glue` yields.

The local tasks feed T5's preprocessors exactly what the TFDS builder would:
the builder config's text features, `idx`, and the label as a class id of
`label_classes` (COPA's 0/1 become "choice1"/"choice2"; JSON booleans become
"False"/"True"; WSC's `target` spans are lifted to the top level and then
repaired by TFDS's own `wsc.fixed` fix). MultiRC passages become one example
per answer and ReCoRD passages one per query, with TFDS's own entity and
answer extraction. A row without a label (the test splits) gets label -1, as
TFDS gives it. Every row is validated, and a bad one is reported with its
file and line.
"""

from typing import Any, Dict, Iterable, List, Sequence, Tuple

import tensorflow.compat.v2 as tf
from tensorflow_datasets.text import super_glue as tfds_super_glue

from switch_mtf.tasks import readers
from switch_mtf.tasks import superglue

# Integer features of the TFDS builder (label is a ClassLabel: int64).
_INT32_FEATURES = ("idx", "span1_index", "span2_index", "start1", "start2",
                   "end1", "end2")
_COPA_LABELS = {0: "choice1", 1: "choice2"}
# TFDS's class id of a row without a label.
NO_LABEL = -1
MULTIRC_CONFIG = "multirc"
RECORD_CONFIG = "record"
AXG_CONFIG = "axg"

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
  if config_name == MULTIRC_CONFIG:
    # Official answers carry 0/1; TFDS casts them with bool().
    if isinstance(label, bool) or (isinstance(label, int) and
                                   label in (0, 1)):
      return "True" if label else "False"
    raise ValueError(f"MultiRC label must be 0 or 1, got {label!r}")
  if isinstance(label, bool):
    return "True" if label else "False"
  if isinstance(label, str):
    return label
  raise ValueError(f"label must be a string or a boolean, got {label!r}")


def _class_id(config_name: str, owner: Dict[str, Any], labels_required: bool,
              where: str) -> int:
  """The label's class id; NO_LABEL where an unlabelled row is allowed."""
  if "label" not in owner and not labels_required:
    return NO_LABEL
  classes = list(superglue.BUILDER_CONFIGS[config_name].label_classes)
  try:
    return classes.index(_label_text(config_name, owner["label"]))
  except ValueError as e:
    raise ValueError(
        f"{where}: invalid label {owner['label']!r} for {config_name} "
        f"(classes {classes}): {e}") from e


def _typed(value: Any, expected: type, name: str, where: str) -> Any:
  """The value, if of the expected JSON type (a bool is no int here)."""
  if not isinstance(value, expected) or isinstance(value, bool):
    if name == "idx":
      raise ValueError(f"{where}: `idx` must be an integer, got {value!r}.")
    raise ValueError(f"{where}: field {name!r} must be {expected.__name__}, "
                     f"got {value!r}.")
  return value


def _object(value: Any, fields: Iterable[str], name: str,
            where: str) -> Dict[str, Any]:
  """A nested JSON object that must have the given fields."""
  if not isinstance(value, dict):
    raise ValueError(f"{where}: `{name}` must be an object, got {value!r}.")
  missing = [field for field in fields if field not in value]
  if missing:
    raise ValueError(f"{where}: `{name}` lacks field(s) {missing}; has "
                     f"{sorted(value)}.")
  return value


def _list(value: Any, name: str, where: str) -> list:
  if not isinstance(value, list):
    raise ValueError(f"{where}: `{name}` must be a list, got {value!r}.")
  return value


def to_example(config_name: str, row: Dict[str, Any], path: str,
               line_number: int, labels_required: bool = True) -> Example:
  """Converts one official row of a single-example config to its example."""
  where = f"{path}:{line_number}"
  config = superglue.BUILDER_CONFIGS[config_name]
  row = dict(row)
  if config_name.startswith("wsc"):
    readers.require_fields(row, ["target"], path, line_number)
    row.update(_object(row["target"], [], "target", where))
  readers.require_fields(
      row, list(config.features) + ["idx"] + ["label"] * labels_required,
      path, line_number)
  example = {}
  for feature in config.features:
    expected = int if feature in _INT32_FEATURES else str
    example[feature] = _typed(row[feature], expected, feature, where)
  if config_name == superglue.WSC_CONFIG:
    try:
      # pylint: disable-next=protected-access
      example = tfds_super_glue._fix_wst(example)
    except (AssertionError, IndexError) as e:
      raise ValueError(
          f"{where}: WSC span text is not in the text and cannot be "
          f"repaired: {example}") from e
  example["label"] = _class_id(config_name, row, labels_required, where)
  example["idx"] = _typed(row["idx"], int, "idx", where)
  return example


def multirc_examples(row: Dict[str, Any], path: str, line_number: int,
                     labels_required: bool = True) -> List[Example]:
  """A MultiRC passage row -> one example per answer, as TFDS flattens it."""
  where = f"{path}:{line_number}"
  readers.require_fields(row, ["idx", "passage"], path, line_number)
  passage = _object(row["passage"], ["text", "questions"], "passage", where)
  paragraph = _typed(passage["text"], str, "passage.text", where)
  examples = []
  for q, question in enumerate(_list(passage["questions"],
                                     "passage.questions", where)):
    q_name = f"passage.questions[{q}]"
    _object(question, ["question", "idx", "answers"], q_name, where)
    for a, answer in enumerate(_list(question["answers"], q_name + ".answers",
                                     where)):
      a_name = f"{q_name}.answers[{a}]"
      _object(answer, ["text", "idx"] + ["label"] * labels_required, a_name,
              where)
      examples.append({
          "paragraph": paragraph,
          "question": _typed(question["question"], str, q_name + ".question",
                             where),
          "answer": _typed(answer["text"], str, a_name + ".text", where),
          "label": _class_id(MULTIRC_CONFIG, answer, labels_required,
                             f"{where}: {a_name}"),
          "idx": {"paragraph": _typed(row["idx"], int, "idx", where),
                  "question": _typed(question["idx"], int, q_name + ".idx",
                                     where),
                  "answer": _typed(answer["idx"], int, a_name + ".idx",
                                   where)},
      })
  return examples


def record_examples(row: Dict[str, Any], path: str, line_number: int,
                    labels_required: bool = True) -> List[Example]:
  """A ReCoRD passage row -> one example per query, as TFDS yields them.

  Entities and answers are TFDS's own extraction: the passage text at every
  entity span, and the answer texts, each de-duplicated and sorted.
  """
  where = f"{path}:{line_number}"
  readers.require_fields(row, ["idx", "passage", "qas"], path, line_number)
  passage = _object(row["passage"], ["text", "entities"], "passage", where)
  text = _typed(passage["text"], str, "passage.text", where)
  for e, entity in enumerate(_list(passage["entities"], "passage.entities",
                                   where)):
    name = f"passage.entities[{e}]"
    _object(entity, ["start", "end"], name, where)
    start = _typed(entity["start"], int, name + ".start", where)
    end = _typed(entity["end"], int, name + ".end", where)
    if not 0 <= start <= end < len(text):
      raise ValueError(
          f"{where}: {name} spans characters {start}..{end} (inclusive), "
          f"outside the passage text of {len(text)} characters.")
  examples = []
  for q, qa in enumerate(_list(row["qas"], "qas", where)):
    name = f"qas[{q}]"
    _object(qa, ["query", "idx"] + ["answers"] * labels_required, name, where)
    for a, answer in enumerate(_list(qa.get("answers", []), name + ".answers",
                                     where)):
      _object(answer, ["text"], f"{name}.answers[{a}]", where)
      _typed(answer["text"], str, f"{name}.answers[{a}].text", where)
    examples.append({
        "passage": text,
        "query": _typed(qa["query"], str, name + ".query", where),
        # pylint: disable=protected-access
        "entities": tfds_super_glue._get_record_entities(passage),
        "answers": tfds_super_glue._get_record_answers(qa),
        # pylint: enable=protected-access
        "idx": {"passage": _typed(row["idx"], int, "idx", where),
                "query": _typed(qa["idx"], int, name + ".idx", where)},
    })
  return examples


def check_axg_pairs(numbered: Sequence[Tuple[int, Example]],
                    path: str) -> None:
  """AX-g rows idx 2k and 2k+1 are one Winogender pair (same hypothesis).

  Gender parity compares the predictions within each pair, so a file whose
  rows do not pair up would give a meaningless score.
  """
  by_idx = {example["idx"]: (line, example) for line, example in numbered}
  for line_number, example in numbered:
    idx = example["idx"]
    if idx ^ 1 not in by_idx:
      raise ValueError(
          f"{path}:{line_number}: AX-g row idx {idx} has no partner (idx "
          f"{idx ^ 1}); the rows of a pair are idx 2k and 2k+1.")
    partner_line, partner = by_idx[idx ^ 1]
    if partner["hypothesis"] != example["hypothesis"]:
      raise ValueError(
          f"{path}:{line_number}: AX-g row idx {idx} and its partner idx "
          f"{idx ^ 1} (line {partner_line}) have different hypotheses; the "
          "rows of a pair differ in the premise's pronoun only.")


def read_examples(config_name: str, path: str,
                  labels_required: bool = True) -> List[Example]:
  """All rows of an official jsonl file as TFDS-style examples."""
  numbered = []
  for line_number, row in readers.read_jsonl(path):
    if config_name == MULTIRC_CONFIG:
      examples = multirc_examples(row, path, line_number, labels_required)
    elif config_name == RECORD_CONFIG:
      examples = record_examples(row, path, line_number, labels_required)
    else:
      examples = [to_example(config_name, row, path, line_number,
                             labels_required)]
    numbered += [(line_number, example) for example in examples]
  if not numbered:
    raise ValueError(f"{path} yields no examples: its passages have no "
                     "questions or answers.")
  if config_name == AXG_CONFIG:
    check_axg_pairs(numbered, path)
  return [example for _, example in numbered]


def _column(key: str, values: List[Any]) -> Any:
  """One feature of all examples as a tensor with the builder's dtype."""
  first = values[0]
  if isinstance(first, dict):
    return {k: _column(k, [v[k] for v in values]) for k in first}
  if isinstance(first, list):
    return tf.ragged.constant(values, dtype=tf.string, ragged_rank=1)
  if key == "label":
    return tf.constant(values, dtype=tf.int64)
  if isinstance(first, int):
    return tf.constant(values, dtype=tf.int32)
  return tf.constant(values, dtype=tf.string)


def to_dataset(examples: Sequence[Example]) -> tf.data.Dataset:
  """The examples as a tf.data.Dataset with the TFDS builder's dtypes."""
  columns = {key: _column(key, [example[key] for example in examples])
             for key in examples[0]}
  dataset = tf.data.Dataset.from_tensor_slices(columns)
  if any(isinstance(v, tf.RaggedTensor) for v in columns.values()):
    # Slices of a ragged column are ragged specs; inside a map they are the
    # plain string vectors TFDS yields for a Sequence feature.
    dataset = dataset.map(lambda example: example)
  return dataset
