"""What the SuperGLUE task tests share: the fixture folder and scoring."""

import os
from typing import Any, Dict, Iterator, Optional, Sequence

import gin
import seqio

from switch_mtf.tasks import readers

# Hand-written files in the official layout (see test_local_superglue.py).
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "testdata", "superglue")


def fixture_folder(monkeypatch) -> Iterator[None]:
  """As a pytest fixture: the local tasks read FIXTURES, with clean gin."""
  monkeypatch.setenv(readers.SUPERGLUE_DIR_ENV_VAR, FIXTURES)
  gin.clear_config()
  yield
  gin.clear_config()


def score(task_name: str, examples: Sequence[Dict[str, Any]],
          predictions: Sequence[str],
          targets: Optional[Sequence[Any]] = None) -> Dict[str, float]:
  """The task's metrics on predictions, postprocessed as eval does.

  Targets default to the examples' `targets_pretokenized`.
  """
  task = seqio.get_mixture_or_task(task_name)
  if targets is None:
    targets = [e["targets_pretokenized"].decode() for e in examples]
  targets = [task.postprocess_fn(t, example=e, is_target=True)
             for t, e in zip(targets, examples)]
  outputs = [task.postprocess_fn(p, example=e, is_target=False)
             for p, e in zip(predictions, examples)]
  scores = {}
  for metric_fn in task.metric_fns:
    scores.update(metric_fn(targets, outputs))
  return scores
