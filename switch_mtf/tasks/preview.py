"""Decoded examples of a task as the model sees them (inspect_tasks.py)."""

import itertools
from typing import Dict, List, Mapping, Optional

import seqio

from switch_mtf.tasks import denoising
from switch_mtf.tasks import registry


def default_split(task: seqio.Task) -> str:
  """Validation when the task has it (held-out text), else its first split."""
  return "validation" if "validation" in task.splits else task.splits[0]


def preview(task_name: str,
            num_examples: int = 2,
            split: Optional[str] = None,
            sequence_length: Optional[Mapping[str, int]] = None
            ) -> List[Dict[str, str]]:
  """The first preprocessed examples of a task, token ids decoded to text."""
  task = registry.get_task_or_mixture(task_name)
  if not isinstance(task, seqio.Task):
    raise ValueError(f"{task_name!r} is a mixture; preview one of its tasks: "
                     f"{[t.name for t in task.tasks]}.")
  split = split or default_split(task)
  if split not in task.splits:
    raise ValueError(f"Task {task_name!r} has no split {split!r}; it has "
                     f"{list(task.splits)}.")
  dataset = task.get_dataset(
      dict(sequence_length or denoising.SEQUENCE_LENGTH), split=split,
      shuffle=False)
  examples = []
  for example in itertools.islice(dataset.as_numpy_iterator(), num_examples):
    examples.append({
        key: feature.vocabulary.decode(example[key].tolist())
        for key, feature in task.output_features.items() if key in example})
  if not examples:
    raise ValueError(f"Task {task_name!r} produced no examples for split "
                     f"{split!r}.")
  return examples
