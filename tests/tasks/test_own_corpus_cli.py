"""The own corpus through the real CLI: gin bindings only, no code.

Runs are the user's commands (`switch_mtf_transformer` with our gin files)
in a subprocess started outside the repo.
"""

import os

import pytest

from tests.cli import cli_runs

CORPUS_FLAGS = (
    "--module_import=switch_mtf.tasks",
    "--gin_file=dataset.gin",
    "--gin_file=models/switch_tiny.gin",
    "--gin_file=runs/cpu_tiny.gin",
    "--gin_file=runs/reliable.gin",
    "--gin_param=MIXTURE_NAME='own_corpus_span_corruption'",
)


def _gin(binding):
  return "--gin_param=" + binding


@pytest.mark.slow
def test_a_bad_line_in_a_later_file_stops_the_run_before_step_one(tmp_path):
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  (corpus / "a.txt").write_text("A first document.\nA second one.\n" * 50)
  bad = corpus / "b.txt"
  bad.write_bytes("Fine.\nFine too.\nCaf\u00e9.\n".encode("latin-1"))
  model_dir = str(tmp_path / "model")
  proc = cli_runs.run_cli(model_dir, [
      *CORPUS_FLAGS, _gin("own_corpus.format='text'"),
      _gin("own_corpus.train_files='%s/*.txt'" % corpus)], cwd=str(tmp_path))
  assert proc.returncode != 0, proc.stdout[-3000:]
  assert "The run was stopped before its first step" in proc.stdout
  assert ("task 'own_corpus_span_corruption': %s:3: not UTF-8 (invalid "
          "continuation byte at byte 3 of the line); re-encode the file as "
          "UTF-8" % bad) in proc.stdout
  assert "step, tf_loss" not in proc.stdout
  assert not os.path.isdir(model_dir) or not cli_runs.checkpoint_steps(
      model_dir)
