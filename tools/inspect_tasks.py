"""Shows preprocessed examples (decoded text) of switch-mtf's tasks.

    python tools/inspect_tasks.py                       # every local task
    python tools/inspect_tasks.py --tasks=local_super_glue_cb --num_examples=5
    python tools/inspect_tasks.py --superglue_dir=/data/sg --vocabulary=t5

Sentinels show as <extra_id_N>; EOS ends each sequence.
"""

from absl import app
from absl import flags
import gin

from switch_mtf.tasks import preview
from switch_mtf.tasks import registry

_TASKS = flags.DEFINE_list(
    "tasks", None, "Tasks to show (default: every local, offline task).")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", 2, "Examples per task.")
_SPLIT = flags.DEFINE_string(
    "split", None, "Split to read (default: validation when the task has it).")
_INPUTS_LENGTH = flags.DEFINE_integer("inputs_length", 512,
                                      "Input sequence length.")
_TARGETS_LENGTH = flags.DEFINE_integer("targets_length", 114,
                                       "Target sequence length.")
_VOCABULARY = flags.DEFINE_string(
    "vocabulary", None, "'embedded', 't5' or a .model path (gin "
    "task_vocabulary.name).")
_SUPERGLUE_DIR = flags.DEFINE_string(
    "superglue_dir", None,
    "Folder laid out as <Task>/{train,val}.jsonl for the local tasks.")


def main(argv):
  del argv
  if _VOCABULARY.value:
    gin.bind_parameter("switch_mtf.tasks.task_vocabulary.name",
                       _VOCABULARY.value)
  if _SUPERGLUE_DIR.value:
    gin.bind_parameter("switch_mtf.tasks.local_superglue_dir.path",
                       _SUPERGLUE_DIR.value)
  length = {"inputs": _INPUTS_LENGTH.value, "targets": _TARGETS_LENGTH.value}
  for name in _TASKS.value or registry.LOCAL_TASKS:
    print(f"=== {name}")
    for i, example in enumerate(preview.preview(
        name, _NUM_EXAMPLES.value, _SPLIT.value, length)):
      for key, text in example.items():
        print(f"[{i}] {key}: {text}")
    print()


if __name__ == "__main__":
  app.run(main)
