"""The SuperGLUE leaderboard submission: decodes in, leaderboard files out.

The expected files are written out by hand in the format jiant (the
SuperGLUE authors' toolkit) writes for the leaderboard; the decode and input
files are written and read with Mesh TF's own `write_lines_to_file` and
`get_inputs_from_file`, which `--mode=infer` uses.
"""

import json
import os
import subprocess
import sys
import zipfile

from mesh_tensorflow.transformer import utils as mtf_utils
import pytest

from switch_mtf.tasks import submission
from tests import repo_paths
from tests.tasks import superglue_testing

FIXTURES = superglue_testing.FIXTURES
STEP = 7

# Leaderboard task -> (decodes of its fixture test split, expected rows).
CASES = {
    "BoolQ": (["True", "False"],
              [{"idx": 0, "label": "true"}, {"idx": 1, "label": "false"}]),
    "CB": (["neutral", "contradiction", "entailment"],
           [{"idx": 0, "label": "neutral"},
            {"idx": 1, "label": "contradiction"},
            {"idx": 2, "label": "entailment"}]),
    "COPA": (["choice2", "choice1"],
             [{"idx": 0, "label": 1}, {"idx": 1, "label": 0}]),
    "MultiRC": (["True", "False", "True"],
                [{"idx": 0, "passage": {"questions": [
                    {"idx": 0, "answers": [{"idx": 0, "label": 1},
                                           {"idx": 1, "label": 0}]},
                    {"idx": 1, "answers": [{"idx": 2, "label": 1}]}]}}]),
    "ReCoRD": (["Lionel Messi", "Barcelona"],
               [{"idx": 0, "label": "Lionel Messi"},
                {"idx": 1, "label": "Barcelona"}]),
    "RTE": (["not_entailment", "entailment"],
            [{"idx": 0, "label": "not_entailment"},
             {"idx": 1, "label": "entailment"}]),
    "WiC": (["False", "True"],
            [{"idx": 0, "label": "false"}, {"idx": 1, "label": "true"}]),
    # The referents are "The trophy" and "Lucy": T5's WSC postprocessor
    # accepts "the trophy" (determiners and case aside), not "Anna".
    "WSC": (["the trophy", "Anna"],
            [{"idx": 0, "label": "True"}, {"idx": 1, "label": "False"}]),
    "AX-b": (["entailment", "not_entailment", "not_entailment",
              "entailment"],
             [{"idx": 0, "label": "entailment"},
              {"idx": 1, "label": "not_entailment"},
              {"idx": 2, "label": "not_entailment"},
              {"idx": 3, "label": "entailment"}]),
    "AX-g": (["not_entailment", "entailment", "entailment", "entailment"],
             [{"idx": 0, "label": "not_entailment"},
              {"idx": 1, "label": "entailment"},
              {"idx": 2, "label": "entailment"},
              {"idx": 3, "label": "entailment"}]),
}


_fixture_folder = pytest.fixture(autouse=True)(
    superglue_testing.fixture_folder)


def _write_decodes(decodes_dir, decodes_by_name):
  for name, decodes in decodes_by_name.items():
    mtf_utils.write_lines_to_file(
        decodes, submission.decodes_file(str(decodes_dir), name, STEP))


def _read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_every_task_in_the_leaderboard_format(tmp_path):
  _write_decodes(tmp_path / "decodes",
                 {name: decodes for name, (decodes, _) in CASES.items()})
  written = submission.write_submission(str(tmp_path / "decodes"), STEP,
                                        str(tmp_path / "out"))
  assert sorted(os.listdir(tmp_path / "out")) == sorted(
      name + ".jsonl" for name in CASES)
  for name, (decodes, expected) in CASES.items():
    assert _read_jsonl(tmp_path / "out" / (name + ".jsonl")) == expected, name
  assert [(os.path.basename(w.path), w.examples, w.not_a_label)
          for w in written] == [(name + ".jsonl", len(CASES[name][0]), 0)
                                for name in submission.NAMES]


def test_a_decode_that_is_no_label_gets_the_first_label(tmp_path):
  # An empty decode is a line of its own in Mesh TF's file.
  _write_decodes(tmp_path, {"BoolQ": ["maybe", ""], "COPA": ["", "choice2"],
                            "WSC": ["", "Lucy"]})
  written = submission.write_submission(str(tmp_path), STEP,
                                        str(tmp_path / "out"),
                                        ["BoolQ", "COPA", "WSC"])
  assert [w.not_a_label for w in written] == [2, 1, 1]
  assert _read_jsonl(tmp_path / "out" / "BoolQ.jsonl") == [
      {"idx": 0, "label": "false"}, {"idx": 1, "label": "false"}]
  assert _read_jsonl(tmp_path / "out" / "COPA.jsonl") == [
      {"idx": 0, "label": 0}, {"idx": 1, "label": 1}]
  assert _read_jsonl(tmp_path / "out" / "WSC.jsonl") == [
      {"idx": 0, "label": "False"}, {"idx": 1, "label": "True"}]


def test_decodes_that_do_not_match_the_test_split_stop_before_writing(
    tmp_path):
  _write_decodes(tmp_path, {"RTE": ["entailment", "entailment"],
                            "CB": ["neutral", "neutral"]})
  path = submission.decodes_file(str(tmp_path), "CB", STEP)
  with pytest.raises(ValueError, match=rf"{path} has 2 decodes, but "
                     r"local_super_glue_cb has 3 test examples"):
    submission.write_submission(str(tmp_path), STEP, str(tmp_path / "out"),
                                ["RTE", "CB"])
  assert not os.path.exists(tmp_path / "out")
  with pytest.raises(FileNotFoundError, match=rf"{tmp_path}/WiC-{STEP} not "
                     rf"found: run inference with output_filename='"
                     rf"{tmp_path}/WiC'"):
    submission.write_submission(str(tmp_path), STEP, str(tmp_path / "out"),
                                ["WiC"])
  with pytest.raises(ValueError, match=r"Unknown SuperGLUE leaderboard task "
                     r"'AXb'"):
    submission.write_submission(str(tmp_path), STEP, str(tmp_path / "out"),
                                ["AXb"])


def test_decodes_round_trip_through_mesh_tf_files(tmp_path):
  decodes = ["a", "", "two\nlines", "  spaced  ", ""]
  path = str(tmp_path / "x-1")
  mtf_utils.write_lines_to_file(decodes, path)
  assert submission.read_decodes(path) == [
      "a", "", "two lines", "  spaced  ", ""]


def test_inputs_are_the_test_examples_one_per_line_for_infer(tmp_path):
  written = submission.write_inputs(str(tmp_path))
  assert sorted(written) == sorted(submission.NAMES)
  for name, path in written.items():
    entry = submission.leaderboard_task(name)
    examples = submission.examples_of_test_split(entry.task)
    # What decode_from_file reads back: one input per test example.
    assert mtf_utils.get_inputs_from_file(path) == [
        e["inputs_pretokenized"].decode().rstrip() for e in examples]
  assert submission.input_line(
      {"inputs_pretokenized": "a\nb\r\nc".encode()}) == "a b c"


def test_infer_flags_name_the_files_the_submission_reads():
  flags = submission.infer_flags("AX-b", "in", "out", 12)
  assert flags == ["--gin_file=infer.gin",
                   "--gin_param=input_filename='in/AX-b.txt'",
                   "--gin_param=output_filename='out/AX-b'",
                   "--gin_param=infer_checkpoint_step=12"]
  # decode_from_file appends "-<step>" to output_filename.
  assert submission.decodes_file("out", "AX-b", 12) == "out/AX-b-12"


def _tool(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run(
      [sys.executable, os.path.join(repo_paths.TOOLS_DIR,
                                    "superglue_submission.py"), *args],
      capture_output=True, text=True, env=env, check=False)


def test_tool_writes_inputs_then_the_submission_zip(tmp_path):
  sg_flag = f"--superglue_dir={FIXTURES}"
  proc = _tool("inputs", sg_flag, f"--inputs_dir={tmp_path}/in",
               f"--decodes_dir={tmp_path}/dec", "--checkpoint_step=7",
               "--tasks=RTE,AX-b")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.splitlines() == [
      f"wrote {tmp_path}/in/{name}.txt; decode it with: --gin_file=infer.gin "
      f"'--gin_param=input_filename='\"'\"'{tmp_path}/in/{name}.txt'\"'\"''"
      f" '--gin_param=output_filename='\"'\"'{tmp_path}/dec/{name}'\"'\"''"
      " --gin_param=infer_checkpoint_step=7" for name in ("RTE", "AX-b")]
  _write_decodes(tmp_path / "dec", {"RTE": ["entailment", "oops"],
                                    "AX-b": CASES["AX-b"][0]})
  proc = _tool("write", sg_flag, f"--decodes_dir={tmp_path}/dec",
               "--checkpoint_step=7", f"--output_dir={tmp_path}/sub",
               "--tasks=RTE,AX-b", "--zip")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.splitlines() == [
      f"wrote {tmp_path}/sub/RTE.jsonl (2 examples; 1 decodes were no label "
      "and were written as the first label)",
      f"wrote {tmp_path}/sub/AX-b.jsonl (4 examples)",
      f"wrote {tmp_path}/sub.zip"]
  with zipfile.ZipFile(tmp_path / "sub.zip") as archive:
    assert sorted(archive.namelist()) == ["AX-b.jsonl", "RTE.jsonl"]
    assert [json.loads(l) for l in archive.read("AX-b.jsonl").splitlines()
            ] == CASES["AX-b"][1]


@pytest.mark.slow  # a CLI process for an argparse message
def test_tool_names_the_missing_flags():
  proc = _tool("write", "--decodes_dir=x")
  assert proc.returncode != 0
  assert "write needs --checkpoint_step, --output_dir." in proc.stderr
