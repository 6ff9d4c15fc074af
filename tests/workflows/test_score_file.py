"""Scoring a text file (switch_mtf.workflows.score_file, tools/score_file.py).

The slow tests train a tiny Switch model for two steps on an own corpus
configured by gin alone, then check the score of a file three ways: the
tool's printout, the CLI's perplexity eval run by hand with the documented
bindings (same loss and token count), and Mesh TF's per-example scoring
(`score_from_task.gin`, another code path: summed log-likelihoods over the
same examples give the same mean loss).
"""

import gzip
import math
import os
import re

import gin
import pytest

from switch_mtf.cli import events
from switch_mtf.cli import gin_config
from switch_mtf.tasks import own_corpus
from switch_mtf.tasks import paths
from switch_mtf.tasks import wiki
from switch_mtf.workflows import score_file
from tests import repo_paths
from tests.cli import cli_runs

MODEL_GIN = ("models/switch_tiny.gin", "runs/cpu_tiny.gin")
TRAIN_FLAGS = ("--module_import=switch_mtf.tasks", "--gin_file=dataset.gin",
               *("--gin_file=" + f for f in MODEL_GIN),
               "--gin_file=runs/reliable.gin",
               "--gin_param=MIXTURE_NAME='own_corpus_span_corruption'",
               "--gin_param=utils.run.train_steps=2")
TOOL = repo_paths.load_tool("score_file")


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _paragraphs(start, count):
  path = os.path.join(paths.WIKI_DIR, wiki.SPLIT_FILES["validation"])
  with gzip.open(path, "rt", encoding="utf-8") as f:
    articles = [line.rstrip("\n").split("\t")[2:] for line in f]
  return [p for a in articles[start:start + count] for p in a[:2]]


# ------------------------------------------------------------------ fast


def test_help_documents_every_flag(capsys):
  with pytest.raises(SystemExit):
    TOOL.main(["--help"])
  text = capsys.readouterr().out
  for flag in ("--model_dir", "--text_file", "--gin_file", "--gin_param",
               "--objective", "--format", "--text_key", "--documents",
               "--checkpoint_step", "--batch_size", "--seed"):
    # The flag, its value name or choices, then its help text.
    assert re.search(r"^  %s(?: [A-Z_]+| \{[^}]+\})?\s+[a-z]" % flag, text,
                     re.M), flag


def test_bindings_make_the_file_the_validation_split(tmp_path):
  path = tmp_path / "it's here.jsonl"
  path.write_text('{"body": "One."}\n{"body": "Two."}\n')
  request = score_file.ScoreRequest(
      model_dir=str(tmp_path), text_file=str(path), gin_files=MODEL_GIN,
      gin_params=("own_corpus.validation_fraction = 0.5",),
      objective="prefix_lm", file_format="jsonl", text_key="body")
  gin_config.parse(request.gin_files_in_order(),
                   [*request.gin_params, *request.bindings(7)])
  assert gin.query_parameter("%MIXTURE_NAME") == own_corpus.PREFIX_LM_TASK
  assert gin_config.run_arg("eval_checkpoint_step") == 7
  assert gin_config.run_arg("mode") == "perplexity_eval"
  texts = [d["text"] for d in own_corpus.documents(
      "validation", shuffle_files=False).as_numpy_iterator()]
  assert texts == [b"One.", b"Two."]


def test_a_model_dir_without_checkpoint_is_an_error(tmp_path, capsys):
  (tmp_path / "a.txt").write_text("Some text.\n")
  code = TOOL.main([f"--model_dir={tmp_path}",
                    f"--text_file={tmp_path / 'a.txt'}",
                    "--gin_file=models/switch_tiny.gin"])
  assert code == 1
  assert f"{tmp_path} has no checkpoint to score with" in (
      capsys.readouterr().err)


@pytest.mark.parametrize("changes,message", [
    ({"objective": "mlm"}, r"objective 'mlm': use one of \['prefix_lm', "
     r"'span_corruption'\]"),
    ({"file_format": "tfds"}, r"Scoring reads a file"),
    ({"batch_size": 0}, r"batch_size=0 must be >= 1"),
])
def test_bad_requests_are_refused(changes, message):
  with pytest.raises(ValueError, match=message):
    score_file.ScoreRequest(model_dir="m", text_file="f", gin_files=MODEL_GIN,
                            **changes)


# ------------------------------------------------------------------ slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny Switch model trained 2 steps on an own corpus, gin only."""
  root = tmp_path_factory.mktemp("score")
  (root / "train.txt").write_text("\n".join(_paragraphs(0, 40)) + "\n")
  text_file = root / "score.txt"
  text_file.write_text("\n".join(_paragraphs(50, 6)) + "\n")
  model_dir = str(root / "model")
  proc = cli_runs.run_cli(model_dir, [
      *TRAIN_FLAGS, "--gin_param=own_corpus.format='text'",
      "--gin_param=own_corpus.train_files='%s'" % (root / "train.txt")],
                          cwd=str(root))
  assert proc.returncode == 0, proc.stdout[-3000:]
  assert cli_runs.checkpoint_steps(model_dir) == [0, 2]
  return root, model_dir, str(text_file)


def _printed_score(capsys, model_dir, text_file):
  code = TOOL.main([f"--model_dir={model_dir}", f"--text_file={text_file}",
                    *("--gin_file=" + f for f in MODEL_GIN)])
  out = capsys.readouterr().out
  assert code == 0, out
  values = dict(line.split(": ", 1) for line in out.splitlines()
                if ": " in line)
  tokens = int(values["scored"].split()[0])
  cross_entropy = float(values["cross-entropy per token"].split()[0])
  assert float(values["perplexity"]) == pytest.approx(
      math.exp(cross_entropy), rel=1e-3)
  return tokens, cross_entropy


@pytest.mark.slow
def test_score_equals_the_clis_perplexity_eval_by_hand(trained, capsys):
  root, model_dir, text_file = trained
  tokens, cross_entropy = _printed_score(capsys, model_dir, text_file)
  # The user's way: perplexity_eval.gin with the file as validation files.
  proc = cli_runs.run_cli(model_dir, [
      "--module_import=switch_mtf.tasks", "--gin_file=dataset.gin",
      *("--gin_file=" + f for f in MODEL_GIN),
      "--gin_file=perplexity_eval.gin",
      "--gin_param=MIXTURE_NAME='own_corpus_span_corruption'",
      "--gin_param=own_corpus.format='text'",
      "--gin_param=own_corpus.validation_files='%s'" % text_file,
      "--gin_param=utils.run.dataset_split='validation'",
      "--gin_param=utils.run.eval_checkpoint_step=2",
      "--gin_param=utils.run.batch_size=('sequences_per_batch', 8)",
      "--gin_param=utils.run.perplexity_eval_steps=3",
      "--gin_param=mesh_eval_dataset_fn.seed=%d" % score_file.DEFAULT_SEED,
      "--gin_param=utils.run.eval_dir_suffix='by_hand'"], cwd=str(root))
  assert proc.returncode == 0, proc.stdout[-3000:]
  eval_dir = os.path.join(
      model_dir, "eval_own_corpus_span_corruption_validation_24_by_hand")
  scalars, _ = events.read_scalars(eval_dir)
  (by_hand,) = [p.value for p in scalars["neg_log_perplexity"]
                if p.step == 2]
  (by_hand_tokens,) = [p.value for p in scalars["num_eval_tokens"]
                       if p.step == 2]
  assert by_hand_tokens == tokens
  # Same examples and tokens; the batches differ (8 vs the tool's), so the
  # float32 sums do too (one run here missed a 6e-5 absolute bound).
  assert -by_hand == pytest.approx(cross_entropy, rel=1e-4)


@pytest.mark.slow
def test_score_equals_mesh_tfs_per_example_log_likelihoods(trained):
  root, model_dir, text_file = trained
  score = score_file.score_file(score_file.ScoreRequest(
      model_dir=model_dir, text_file=text_file, gin_files=MODEL_GIN))
  scores_file = str(root / "reference")
  proc = cli_runs.run_cli(model_dir, [
      "--module_import=switch_mtf.tasks", "--gin_file=dataset.gin",
      *("--gin_file=" + f for f in MODEL_GIN),
      "--gin_file=score_from_task.gin",
      "--gin_param=MIXTURE_NAME='own_corpus_span_corruption'",
      "--gin_param=own_corpus.format='text'",
      "--gin_param=own_corpus.validation_files='%s'" % text_file,
      "--gin_param=utils.run.dataset_split='validation'",
      "--gin_param=utils.run.eval_checkpoint_step=2",
      "--gin_param=mesh_eval_dataset_fn.seed=%d" % score_file.DEFAULT_SEED,
      "--gin_param=scores_filename='%s'" % scores_file,
      # Mesh TF finds the padding itself only for token targets; the text
      # of each example is not needed here.
      "--gin_param=score_with_estimator.num_examples=%d" % score.examples,
      "--gin_param=save_scores.save_example_text=False"], cwd=str(root))
  assert proc.returncode == 0, proc.stdout[-3000:]
  with open(scores_file + ".scores") as f:
    log_likelihoods = [float(line) for line in f]
  assert len(log_likelihoods) == score.examples > 1
  assert -sum(log_likelihoods) / score.tokens == pytest.approx(
      score.cross_entropy, rel=1e-4)


@pytest.mark.slow
def test_a_bad_file_is_reported_before_the_cli_runs(trained):
  root, model_dir, _ = trained
  bad = root / "bad.jsonl"
  bad.write_text('{"text": "Fine."}\n{"body": "No text field."}\n')
  with pytest.raises(ValueError, match=rf"cannot score {bad}:\n  - "
                     rf"{bad}:2: the row has no field 'text'"):
    score_file.score_file(score_file.ScoreRequest(
        model_dir=model_dir, text_file=str(bad), gin_files=MODEL_GIN,
        file_format="jsonl"), launcher="/nonexistent/launcher")
