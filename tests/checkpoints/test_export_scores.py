"""A model trained with our CLI, exported, scores the same in transformers.

switch_tiny with T5's relative bias (HF has no absolute position table) is
trained a few steps by `switch_mtf_transformer`, exported from its model dir
(the CLI's operative_config.gin says what it is), and loaded with
transformers' from_pretrained. The CLI's own score mode (t5's
score_from_file.gin, in float32) and the HF model must give every example
the same log-likelihood of its target. Routing drops nothing on either
side (Mesh TF eval capacity = the group, HF capacity > the lengths), and
HF's router jitter is switched off: transformers 4.31 would apply the
exported 0.01 at inference too.
"""

import os

import numpy as np
import pytest
import seqio

from switch_mtf.checkpoints import export_hf
from tests.checkpoints import hf_fixtures
from tests.cli import cli_runs

torch = pytest.importorskip("torch")

# switch_tiny, relative bias, our embedded SentencePiece vocabulary.
FLAGS = (
    *cli_runs.TINY_TRAIN_FLAGS,
    "--gin_param=MIXTURE_NAME = 'wiki_span_corruption'",
    "--gin_param=transformer.Unitransformer.positional_embedding = False",
    "--gin_param=SelfAttention.relative_attention_type = 'bias_shared'")
INPUTS = ["To be, or not to be, that is the question",
          "Shall I compare thee to a summer's day?",
          "Now is the winter of our discontent",
          "All the world's a stage"]
TARGETS = ["whether tis nobler in the mind", "Thou art more lovely",
           "made glorious summer", "and all the men and women merely players"]


@pytest.mark.slow
def test_exported_model_scores_targets_like_the_cli(tmp_path):
  import transformers  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / "model")
  train = cli_runs.run_cli(model_dir, [
      *FLAGS,
      "--gin_param=utils.run.train_steps = 10"], cwd=str(tmp_path))
  assert train.returncode == 0, train.stdout[-4000:]
  hf_dir = str(tmp_path / "hf")
  export_hf.export_hf(model_dir, hf_dir, expert_capacity=64)

  (tmp_path / "inputs.txt").write_text("\n".join(INPUTS) + "\n")
  (tmp_path / "targets.txt").write_text("\n".join(TARGETS) + "\n")
  scores = tmp_path / "scores"
  score = cli_runs.run_cli(model_dir, [
      *FLAGS,
      "--gin_file=score_from_file.gin",
      "--gin_param=inputs_filename = '%s'" % (tmp_path / "inputs.txt"),
      "--gin_param=targets_filename = '%s'" % (tmp_path / "targets.txt"),
      "--gin_param=scores_filename = '%s'" % scores,
      # Mesh TF 0.1.21 fails writing the examples' text beside the scores.
      "--gin_param=save_scores.save_example_text = False",
      "--gin_param=utils.run.eval_checkpoint_step = 10",
      "--gin_param=utils.run.batch_size = ('sequences_per_batch', 4)",
      "--gin_param=utils.get_variable_dtype.slice_dtype = 'float32'",
      "--gin_param=utils.get_variable_dtype.activation_dtype = 'float32'",
      "--gin_param=Switch.capacity_factor_eval = 8.0"], cwd=str(tmp_path))
  assert score.returncode == 0, score.stdout[-4000:]
  cli_scores = [float(line) for line in
                open(str(scores) + ".scores").read().split()]

  model = transformers.SwitchTransformersForConditionalGeneration \
      .from_pretrained(hf_dir, router_jitter_noise=0.0).eval()
  vocabulary = seqio.SentencePieceVocabulary(hf_fixtures.SPIECE,
                                             extra_ids=100)
  hf_scores = []
  for text, target in zip(INPUTS, TARGETS):
    input_ids = vocabulary.encode(text) + [1]
    target_ids = vocabulary.encode(target) + [1]
    with torch.no_grad():
      logits = model(
          input_ids=torch.tensor([input_ids]),
          decoder_input_ids=torch.tensor([[0] + target_ids[:-1]])).logits[0]
    log_probs = torch.log_softmax(logits, -1).numpy()
    hf_scores.append(float(log_probs[np.arange(len(target_ids)),
                                     target_ids].sum()))
  assert len(cli_scores) == len(hf_scores) == len(TARGETS)
  np.testing.assert_allclose(hf_scores, cli_scores, rtol=1e-5, atol=1e-4)
  assert len(set(np.round(cli_scores, 2))) == len(TARGETS)  # not constant
  assert os.path.isfile(os.path.join(hf_dir, "spiece.model"))
