"""Runs the planned CLI runs in order, skipping those already stored.

One store entry per run holds what the claims need: the commands, the
training-loss curve (10-step means), the final training loss, steps/s,
divergence, the evaluation at every checkpoint and, for Switch runs, the
router's dropped-token fraction from the event files. Logs stay in the
scratch directory beside the checkpoints.
"""

import os
import shlex
import shutil
from typing import Any, Callable, Dict, Sequence

from switch_mtf.bench import claims_runs
from switch_mtf.bench import events
from switch_mtf.bench import stats
from switch_mtf.bench import store as store_lib

FINAL_WINDOW = 100  # steps averaged for the final training loss


def run_all(runs: Sequence[claims_runs.Run], store: store_lib.ResultStore,
            launcher: claims_runs.Launcher,
            log: Callable[[str], None] = print,
            keep_checkpoints: bool = True) -> None:
  """Trains and evaluates every run the store lacks, in the given order."""
  by_name = {r.name: r for r in runs}
  for index, run in enumerate(runs):
    if store.done(run.name):
      log("claims: %s done, skipped" % run.name)
      continue
    init_run = by_name.get(run.init_from) if run.init_from else None
    if run.init_from and init_run is None:
      raise ValueError("run %s starts from %s, which is not planned; plan "
                       "the pretraining run too." % (run.name, run.init_from))
    log("claims: [%d/%d] %s" % (index + 1, len(runs), run.name))
    store.put(run.name, execute(run, launcher, init_run))
    entry = store.get(run.name)
    log("claims: %s final train loss %s, eval %s" % (
        run.name, entry["final_train_loss"], entry.get("final_eval")))
    if not keep_checkpoints and not _needed_later(run, runs[index + 1:]):
      shutil.rmtree(launcher.model_dir(run), ignore_errors=True)


def _needed_later(run: claims_runs.Run,
                  later: Sequence[claims_runs.Run]) -> bool:
  return any(r.init_from == run.name for r in later)


def execute(run: claims_runs.Run, launcher: claims_runs.Launcher,
            init_run: claims_runs.Run = None) -> Dict[str, Any]:
  """Trains (resuming from checkpoints), evaluates, parses; one entry."""
  init_steps = init_run.train_steps if init_run else 0
  model_dir = launcher.model_dir(run)
  train_cmd = launcher.train_command(run, init_run, init_steps)
  eval_cmd = launcher.eval_command(run, init_run, init_steps)
  attempt = len([f for f in os.listdir(model_dir) if f.startswith("train")]
                ) if os.path.isdir(model_dir) else 0
  os.makedirs(model_dir, exist_ok=True)
  train_log = os.path.join(model_dir, "train.%d.log" % attempt)
  code, train_seconds = launcher.execute(train_cmd, train_log)
  text = ""
  for name in sorted(os.listdir(model_dir)):
    if name.startswith("train.") and name.endswith(".log"):
      with open(os.path.join(model_dir, name)) as f:
        text += f.read()
  train = claims_runs.parse_train_log(text)
  entry: Dict[str, Any] = {
      "run": run.as_dict(),
      "train_command": " ".join(shlex.quote(c) for c in train_cmd),
      "eval_command": " ".join(shlex.quote(c) for c in eval_cmd),
      "train_exit_code": code,
      "train_seconds": round(train_seconds, 1),
      "steps_per_sec": train["steps_per_sec"],
      "diverged": train["diverged"],
      "steps_logged": len(train["losses"]),
      "train_curve_10": claims_runs.curve(train["losses"], 10, 10),
      "train_curve_100": claims_runs.curve(train["losses"], FINAL_WINDOW, 50),
  }
  final = claims_runs.curve(train["losses"], FINAL_WINDOW, 1)
  entry["final_train_loss"] = final[-1][1] if final else None
  dropped = events.mean_over_layers(events.read_scalars(model_dir),
                                    events.DROPPED)
  entry["tokens_dropped_fraction"] = [(s, round(v, 5)) for s, v in dropped]
  if code != 0 and not train["diverged"]:
    entry["error"] = "training exited with %d; see %s" % (code, train_log)
    return entry
  if train["diverged"]:
    return entry
  eval_log = os.path.join(model_dir, "eval.log")
  code, eval_seconds = launcher.execute(eval_cmd, eval_log)
  with open(eval_log) as f:
    evaluation = claims_runs.parse_eval_log(f.read())
  entry["eval_seconds"] = round(eval_seconds, 1)
  entry["eval"] = {str(step): metrics
                   for step, metrics in sorted(evaluation.items())}
  if code != 0:
    entry["error"] = "evaluation exited with %d; see %s" % (code, eval_log)
  if evaluation:
    last = max(evaluation)
    entry["final_eval"] = dict(evaluation[last], step=last)
  return entry


def val_curve(entry: Dict[str, Any], metric: str = "neg_log_perplexity"
              ) -> Sequence:
  """(step, validation CE) from a stored entry (CE = -neg_log_perplexity)."""
  points = []
  for step, metrics in entry.get("eval", {}).items():
    if metric in metrics:
      value = metrics[metric]
      points.append((int(step), -value if metric == "neg_log_perplexity"
                     else value))
  return sorted(points)


def spread_of(values: Sequence[float]) -> Dict[str, float]:
  return stats.spread(values) if values else {}
