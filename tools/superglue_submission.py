"""Writes a SuperGLUE leaderboard submission from `--mode=infer` decodes.

    # 1. Every task's test inputs (<Task>.txt), and the inference flags:
    python tools/superglue_submission.py inputs \\
        --superglue_dir=/data/superglue --inputs_dir=sub/inputs \\
        --decodes_dir=sub/decodes --checkpoint_step=1000
    # 2. For each task, the fine-tuning run's command with those flags added
    #    (its gin files, --model_dir; AX-b and AX-g with the RTE model).
    # 3. The leaderboard's <Task>.jsonl files and the zip to upload:
    python tools/superglue_submission.py write \\
        --superglue_dir=/data/superglue --decodes_dir=sub/decodes \\
        --checkpoint_step=1000 --output_dir=sub/submission --zip

The formats are in `switch_mtf.tasks.submission`; docs/tasks.md has the
whole procedure.
"""

import shlex

from absl import app
from absl import flags
import gin

from switch_mtf.tasks import submission

_SUPERGLUE_DIR = flags.DEFINE_string(
    "superglue_dir", None,
    "SuperGLUE folder in the official layout, with the test files "
    "(<Task>/test.jsonl, AX-b/AX-b.jsonl, AX-g/AX-g.jsonl); default: "
    "SWITCH_MTF_SUPERGLUE_DIR.")
_TASKS = flags.DEFINE_list(
    "tasks", list(submission.NAMES),
    "Leaderboard tasks to write (default: all ten).")
_INPUTS_DIR = flags.DEFINE_string(
    "inputs_dir", None, "inputs: where to write <Task>.txt for inference.")
_DECODES_DIR = flags.DEFINE_string(
    "decodes_dir", None,
    "Where inference writes (inputs) or wrote (write) <Task>-<step>.")
_CHECKPOINT_STEP = flags.DEFINE_integer(
    "checkpoint_step", None, "The checkpoint step inference decodes with.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "write: where to write the <Task>.jsonl files.")
_ZIP = flags.DEFINE_bool(
    "zip", False, "write: also write <output_dir>.zip, the file to upload.")


def _inputs() -> None:
  for name, path in submission.write_inputs(_INPUTS_DIR.value,
                                            _TASKS.value).items():
    flags_text = " ".join(shlex.quote(f) for f in submission.infer_flags(
        name, _INPUTS_DIR.value, _DECODES_DIR.value, _CHECKPOINT_STEP.value))
    print(f"wrote {path}; decode it with: {flags_text}")


def _write() -> None:
  for written in submission.write_submission(
      _DECODES_DIR.value, _CHECKPOINT_STEP.value, _OUTPUT_DIR.value,
      _TASKS.value):
    note = (f"; {written.not_a_label} decodes were no label and were "
            "written as the first label" if written.not_a_label else "")
    print(f"wrote {written.path} ({written.examples} examples{note})")
  if _ZIP.value:
    print(f"wrote {submission.zip_submission(_OUTPUT_DIR.value)}")


_ACTIONS = {"inputs": (_inputs, ("inputs_dir", "decodes_dir",
                                 "checkpoint_step")),
            "write": (_write, ("decodes_dir", "checkpoint_step",
                               "output_dir"))}


def main(argv):
  if len(argv) != 2 or argv[1] not in _ACTIONS:
    raise app.UsageError(f"Give one action: {' or '.join(_ACTIONS)}.")
  action, required = _ACTIONS[argv[1]]
  missing = [f"--{name}" for name in required
             if flags.FLAGS[name].value is None]
  if missing:
    raise app.UsageError(f"{argv[1]} needs {', '.join(missing)}.")
  if _SUPERGLUE_DIR.value:
    gin.bind_parameter("switch_mtf.tasks.local_superglue_dir.path",
                       _SUPERGLUE_DIR.value)
  action()


if __name__ == "__main__":
  app.run(main)
