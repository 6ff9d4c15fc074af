"""SuperGLUE leaderboard submissions from the CLI's `--mode=infer` decodes.

Inference (t5's infer.gin: Mesh TF's `decode_from_file`) decodes a text file
of inputs, one per line, and writes the decodes line for line to
`<output_filename>-<checkpoint step>`. A submission is built around it:
`write_inputs` writes the test split's inputs of each local task, as the task
makes them, to `<Task>.txt`; after inference with `output_filename` set to
`<decodes_dir>/<Task>`, `write_submission` pairs each decode with its test
example, postprocesses it as the task's metrics do, and writes
`<Task>.jsonl` in the leaderboard's format, as jiant (the SuperGLUE authors'
toolkit) writes it:

- one line per example, `{"idx": ..., "label": ...}`: BoolQ and WiC
  "true"/"false", WSC "True"/"False", COPA 0/1, CB, RTE, AX-b and AX-g the
  class names;
- MultiRC one line per passage, `{"idx": p, "passage": {"questions":
  [{"idx": q, "answers": [{"idx": a, "label": 0 or 1}, ...]}, ...]}}`;
- ReCoRD one line per query, `{"idx": query idx, "label": answer text}`.

A decode that is no label gets the task's first label (counted and
reported); the leaderboard needs a label for every example.
"""

import dataclasses
import json
import os
import shutil
from typing import Any, Dict, List, Optional, Sequence, Tuple

import seqio

from switch_mtf.tasks import local_superglue


@dataclasses.dataclass(frozen=True)
class LeaderboardTask:
  """A leaderboard file and the local task whose test split it predicts."""
  name: str  # The leaderboard's file stem, also the folder of the layout.
  task: str
  # The label written for each class id the postprocessor gives; None: the
  # decoded text itself (ReCoRD).
  labels: Optional[Tuple[Any, ...]]


LEADERBOARD_TASKS = (
    LeaderboardTask("BoolQ", "local_super_glue_boolq", ("false", "true")),
    LeaderboardTask("CB", "local_super_glue_cb",
                    ("entailment", "contradiction", "neutral")),
    LeaderboardTask("COPA", "local_super_glue_copa", (0, 1)),
    LeaderboardTask("MultiRC", "local_super_glue_multirc", (0, 1)),
    LeaderboardTask("ReCoRD", "local_super_glue_record", None),
    LeaderboardTask("RTE", "local_super_glue_rte",
                    ("entailment", "not_entailment")),
    LeaderboardTask("WiC", "local_super_glue_wic", ("false", "true")),
    # T5's WSC postprocessor: 1 if the decode names the referent, else 0.
    LeaderboardTask("WSC", local_superglue.WSC_EVAL_TASK, ("False", "True")),
    LeaderboardTask("AX-b", "local_super_glue_axb",
                    ("entailment", "not_entailment")),
    LeaderboardTask("AX-g", "local_super_glue_axg",
                    ("entailment", "not_entailment")),
)
NAMES = tuple(entry.name for entry in LEADERBOARD_TASKS)
_BY_NAME = {entry.name: entry for entry in LEADERBOARD_TASKS}

Example = Dict[str, Any]


@dataclasses.dataclass(frozen=True)
class WrittenFile:
  path: str
  examples: int
  not_a_label: int  # Decodes written as the first label instead.


def leaderboard_task(name: str) -> LeaderboardTask:
  if name not in _BY_NAME:
    raise ValueError(f"Unknown SuperGLUE leaderboard task {name!r}: use one "
                     f"of {list(NAMES)}.")
  return _BY_NAME[name]


def examples_of_test_split(task_name: str) -> List[Example]:
  """The preprocessed test examples of a local task, in file order."""
  dataset = seqio.get_mixture_or_task(task_name).get_dataset(
      None, split="test", shuffle=False)
  return list(dataset.as_numpy_iterator())


def input_line(example: Example) -> str:
  """The example's inputs as one line of infer's input file."""
  text = example["inputs_pretokenized"].decode("utf-8")
  return " ".join(text.splitlines())


def write_inputs(output_dir: str,
                 names: Sequence[str] = NAMES) -> Dict[str, str]:
  """Writes `<output_dir>/<Task>.txt` for infer; returns name -> path."""
  os.makedirs(output_dir, exist_ok=True)
  written = {}
  for name in names:
    examples = examples_of_test_split(leaderboard_task(name).task)
    path = os.path.join(output_dir, name + ".txt")
    with open(path, "w", encoding="utf-8") as f:
      f.write("".join(input_line(e) + "\n" for e in examples))
    written[name] = path
  return written


def read_decodes(path: str) -> List[str]:
  """The lines Mesh TF's write_lines_to_file wrote (empty decodes kept)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{path} not found: run inference with output_filename='"
        f"{path.rsplit('-', 1)[0]}' and infer_checkpoint_step set to the "
        "step given here.")
  with open(path, encoding="utf-8") as f:
    text = f.read()
  lines = text.split("\n")
  if lines[-1] == "":
    lines.pop()
  return lines


def _label(entry: LeaderboardTask, scored: Any) -> Tuple[Any, bool]:
  """(leaderboard label, whether the decode was a label)."""
  value = scored["value"] if isinstance(scored, dict) else scored
  if entry.labels is None:
    return value, True
  if isinstance(value, int) and 0 <= value < len(entry.labels):
    return entry.labels[value], True
  return entry.labels[0], False


def leaderboard_rows(entry: LeaderboardTask, examples: Sequence[Example],
                     decodes: Sequence[str]) -> Tuple[List[Dict], int]:
  """The leaderboard's rows for the decodes, and how many were no label."""
  postprocess = seqio.get_mixture_or_task(entry.task).postprocess_fn
  rows, passages, not_a_label = [], {}, 0
  for example, decode in zip(examples, decodes):
    label, valid = _label(entry, postprocess(decode, example=example,
                                             is_target=False))
    not_a_label += not valid
    if entry.name == "MultiRC":
      questions = passages.setdefault(int(example["idx/paragraph"]), {})
      questions.setdefault(int(example["idx/question"]), []).append(
          {"idx": int(example["idx/answer"]), "label": label})
    elif entry.name == "ReCoRD":
      rows.append({"idx": int(example["idx/query"]), "label": label})
    else:
      rows.append({"idx": int(example["idx"]), "label": label})
  for paragraph, questions in passages.items():
    rows.append({"idx": paragraph, "passage": {"questions": [
        {"idx": question, "answers": answers}
        for question, answers in questions.items()]}})
  return rows, not_a_label


def decodes_file(decodes_dir: str, name: str, checkpoint_step: int) -> str:
  return os.path.join(decodes_dir, f"{name}-{checkpoint_step}")


def infer_flags(name: str, inputs_dir: str, decodes_dir: str,
                checkpoint_step: int) -> List[str]:
  """The CLI flags (after the model's own) that decode one task's inputs."""
  return ["--gin_file=infer.gin",
          f"--gin_param=input_filename='{os.path.join(inputs_dir, name)}.txt'",
          "--gin_param=output_filename='"
          f"{os.path.join(decodes_dir, name)}'",
          f"--gin_param=infer_checkpoint_step={checkpoint_step}"]


def write_submission(decodes_dir: str, checkpoint_step: int, output_dir: str,
                     names: Sequence[str] = NAMES) -> List[WrittenFile]:
  """Writes `<output_dir>/<Task>.jsonl` from `<decodes_dir>/<Task>-<step>`.

  Every decodes file is checked against its task's test examples before
  anything is written, so a stale or partial file stops the run.
  """
  work = []
  for name in names:
    entry = leaderboard_task(name)
    path = decodes_file(decodes_dir, name, checkpoint_step)
    decodes = read_decodes(path)
    examples = examples_of_test_split(entry.task)
    if len(decodes) != len(examples):
      raise ValueError(
          f"{path} has {len(decodes)} decodes, but {entry.task} has "
          f"{len(examples)} test examples: decode the inputs written for "
          "this SuperGLUE folder (write_inputs), all of them.")
    work.append((entry, examples, decodes))
  os.makedirs(output_dir, exist_ok=True)
  written = []
  for entry, examples, decodes in work:
    rows, not_a_label = leaderboard_rows(entry, examples, decodes)
    path = os.path.join(output_dir, entry.name + ".jsonl")
    with open(path, "w", encoding="utf-8") as f:
      f.write("".join(json.dumps(row) + "\n" for row in rows))
    written.append(WrittenFile(path, len(examples), not_a_label))
  return written


def zip_submission(output_dir: str) -> str:
  """`<output_dir>.zip` with the jsonl files at its top, as uploaded."""
  return shutil.make_archive(output_dir, "zip", output_dir)
