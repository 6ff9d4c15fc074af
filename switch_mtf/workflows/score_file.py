"""Score a text file: a model's per-token cross-entropy and perplexity on it.

The score is the CLI's own perplexity evaluation (`perplexity_eval.gin`,
`utils.run.mode = 'perplexity_eval'`), run on the file as the validation
split of an own-corpus task (own_corpus.py) with the model's gin files, so
it is the number a user would get from the CLI by hand, and the number the
pretraining curves show: the mean cross-entropy over the target tokens of
the task's examples (span corruption: the masked spans, their sentinels and
EOS; prefix LM: the continuations). The noise is seeded, so a file scores
the same every time.

Before the CLI starts, the file is checked (own_corpus_check.py) and its
examples are counted in-process under the same gin config, so that the eval
covers every example exactly once; the tokens the CLI reports scoring must
equal those counted.
"""

import dataclasses
import logging
import math
import os
import subprocess
from typing import Dict, List, Optional, Sequence, Tuple

import gin
import seqio

from switch_mtf.cli import checkpoints
from switch_mtf.cli import gin_config
from switch_mtf.cli import pipeline
from switch_mtf.cli import progress
from switch_mtf.tasks import own_corpus
from switch_mtf.tasks import own_corpus_check

OBJECTIVES = {"span_corruption": own_corpus.SPAN_CORRUPTION_TASK,
              "prefix_lm": own_corpus.PREFIX_LM_TASK}
LOG_FILE = "score_file.log"
DEFAULT_SEED = 1234


@dataclasses.dataclass(frozen=True)
class FileScore:
  """What the perplexity eval of one checkpoint measured on one file."""
  path: str
  task: str
  checkpoint_step: int
  examples: int
  tokens: int
  cross_entropy: float  # mean over target tokens, nats

  @property
  def perplexity(self) -> float:
    return math.exp(self.cross_entropy)

  def report(self) -> str:
    return "\n".join((
        "file: %s" % self.path,
        "task: %s, checkpoint step %d" % (self.task, self.checkpoint_step),
        "scored: %d target tokens in %d examples" % (self.tokens,
                                                     self.examples),
        "cross-entropy per token: %.4f nats" % self.cross_entropy,
        "perplexity: %.3f" % self.perplexity))


@dataclasses.dataclass(frozen=True)
class ScoreRequest:
  """A file, how to read it, and the model that scores it."""
  model_dir: str
  text_file: str
  gin_files: Sequence[str]
  gin_params: Sequence[str] = ()
  objective: str = "span_corruption"
  file_format: str = "text"
  text_key: str = "text"
  documents: str = "one_per_line"
  checkpoint_step: Optional[int] = None
  batch_size: int = 8
  seed: int = DEFAULT_SEED

  def __post_init__(self):
    if self.objective not in OBJECTIVES:
      raise ValueError("objective %r: use one of %s."
                       % (self.objective, sorted(OBJECTIVES)))
    if self.file_format == "tfds":
      raise ValueError("Scoring reads a file: use format text, jsonl or "
                       "tfrecord.")
    if self.batch_size < 1:
      raise ValueError("batch_size=%d must be >= 1." % self.batch_size)

  @property
  def task(self) -> str:
    return OBJECTIVES[self.objective]

  def bindings(self, checkpoint_step: int) -> List[str]:
    """gin bindings after the user's: the file as the validation split."""
    return [
        "MIXTURE_NAME = %r" % self.task,
        "own_corpus.format = %r" % self.file_format,
        "own_corpus.train_files = None",
        "own_corpus.validation_files = [%r]" % os.path.abspath(
            self.text_file),
        "own_corpus.validation_fraction = 0.0",
        "own_corpus.text_key = %r" % self.text_key,
        "own_corpus.documents = %r" % self.documents,
        "utils.run.dataset_split = 'validation'",
        "utils.run.eval_checkpoint_step = %d" % checkpoint_step,
        "utils.run.batch_size = ('sequences_per_batch', %d)" % self.batch_size,
        "mesh_eval_dataset_fn.seed = %d" % self.seed,
    ]

  def gin_files_in_order(self) -> List[str]:
    return ["dataset.gin", *self.gin_files, "perplexity_eval.gin"]


def count_targets(task_name: str, sequence_length: Dict[str, int],
                  seed: int) -> Tuple[int, int]:
  """(examples, target tokens) of the task's validation split, as the
  perplexity eval reads it (unshuffled, seeded, trimmed)."""
  dataset = seqio.get_mixture_or_task(task_name).get_dataset(
      sequence_length, split="validation", shuffle=False, seed=seed)
  examples = tokens = 0
  for example in dataset.as_numpy_iterator():
    examples += 1
    tokens += int((example["targets"] > 0).sum())
  return examples, tokens


def eval_results(log: str, step: int) -> Dict[str, float]:
  """The estimator's evaluate() results for `step` in a CLI log."""
  found = {}
  for line in log.splitlines():
    event = progress.parse_line(line)
    if isinstance(event, progress.EvalResults) and event.step == step:
      found = dict(event.values)
  return found


def run_cli(model_dir: str, flags: List[str], launcher: str) -> str:
  """Runs the CLI; returns its log (also appended to model_dir/logs)."""
  command = [launcher, "--model_dir=" + model_dir, *flags]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="1")
  proc = subprocess.run(command, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, env=env,
                        errors="replace", check=False)
  log_dir = os.path.join(model_dir, pipeline.LOG_DIR)
  os.makedirs(log_dir, exist_ok=True)
  log_path = os.path.join(log_dir, LOG_FILE)
  with open(log_path, "a") as f:
    f.write("\n==== %s\n%s" % (" ".join(command), proc.stdout))
  if proc.returncode:
    raise RuntimeError(
        "%s exited with code %d. Last lines of its log (full log: %s):\n%s"
        % (os.path.basename(launcher), proc.returncode, log_path,
           "\n".join(proc.stdout.splitlines()[-30:])))
  return proc.stdout


def _quiet_gin_search(record: logging.LogRecord) -> bool:
  # gin logs an error for each search path without the file it then finds.
  return not record.getMessage().startswith("Path not found: ")


def score_file(request: ScoreRequest,
               launcher: str = pipeline.LAUNCHER) -> FileScore:
  """Scores the file with the CLI's perplexity eval; raises on bad input."""
  step = request.checkpoint_step
  if step is None:
    step = checkpoints.latest_step(request.model_dir)
    if step is None:
      raise ValueError("%s has no checkpoint to score with; train first or "
                       "pass the model dir of a trained model."
                       % request.model_dir)
  checkpoints.verify(request.model_dir, step)
  params = [*request.gin_params, *request.bindings(step)]
  root = logging.getLogger()
  root.addFilter(_quiet_gin_search)
  try:
    gin_config.parse(request.gin_files_in_order(), params)
    problems = own_corpus_check.problems("validation")
    if problems:
      raise ValueError("cannot score %s:\n  - %s" % (
          request.text_file, "\n  - ".join(problems)))
    examples, tokens = count_targets(
        request.task, gin_config.run_arg("sequence_length"), request.seed)
  finally:
    gin.clear_config()
    root.removeFilter(_quiet_gin_search)
  steps = -(-examples // request.batch_size)
  flags = ["--module_import=switch_mtf.tasks",
           *["--gin_file=" + f for f in request.gin_files_in_order()],
           *["--gin_param=" + p for p in params],
           "--gin_param=utils.run.perplexity_eval_steps = %d" % steps]
  results = eval_results(run_cli(request.model_dir, flags, launcher), step)
  if "neg_log_perplexity" not in results:
    raise RuntimeError("The CLI finished without a perplexity result for "
                       "step %d; see %s." % (step, os.path.join(
                           request.model_dir, pipeline.LOG_DIR, LOG_FILE)))
  scored = int(round(results["num_eval_tokens"]))
  if scored != tokens:
    raise RuntimeError(
        "The CLI scored %d target tokens but the file's %d examples have %d:"
        " the eval did not read the file as counted." % (scored, examples,
                                                         tokens))
  return FileScore(path=request.text_file, task=request.task,
                   checkpoint_step=step, examples=examples, tokens=tokens,
                   cross_entropy=-results["neg_log_perplexity"])
