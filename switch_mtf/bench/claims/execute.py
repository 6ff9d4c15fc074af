"""Runs the planned CLI runs in order, skipping those already stored.

One store entry per run holds what the claims need: the commands, the
training-loss curve (10-step means), the final training loss, steps/s,
divergence, the evaluation at every checkpoint and, for Switch runs, the
router's dropped-token fraction from the event files. Logs stay in the
scratch directory beside the checkpoints.
"""

import concurrent.futures
import json
import os
import shlex
import shutil
import threading
from typing import (Any, Callable, Collection, Dict, List, Optional,
                    Sequence, Set)

from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import store as store_lib
from switch_mtf.workflows import run_data

FINAL_WINDOW = 100  # steps averaged for the final training loss


class RunFailed(RuntimeError):
  """A CLI process failed without a result (crash, kill, bad config)."""


def run_all(runs: Sequence[claims_runs.Run], store: store_lib.ResultStore,
            launcher: claims_runs.Launcher,
            log: Callable[[str], None] = print,
            keep_checkpoints: bool = True,
            plan_runs: Sequence[claims_runs.Run] = (),
            jobs: int = 1, command: str = "",
            rerun_stale: bool = False,
            code_parts: Sequence[str] = provenance.CLI_CODE,
            keep: Collection[str] = ()) -> None:
  """Trains and evaluates every run the store lacks, in the given order.

  A stored run whose checkpoint is gone (model dirs are scratch, lost with
  the machine) is trained again, before the runs that need it, when a run
  still to train starts from it or learns from it: one of the given runs
  (then the lost run is trained again even if not given: `--runs=
  student_*` on a new machine first trains the students' teacher again),
  or, for a given lost run, any planned run not stored yet. Same config
  and seed; the new run replaces its stored entry, so the stored teacher
  is the one its students learned from.

  plan_runs: every run of the plan (default: `runs`), where fine-tuning runs
  find the pretraining run they start from and students their teacher.
  Model directories are deleted after a run unless keep_checkpoints, some
  planned run starts from it or learns from it, or its name is in `keep`
  (the possible teachers of a later part).
  jobs: CLI runs at a time, for machines with cores to spare (on 2 cores
  two tiny runs side by side barely beat one after the other); a
  fine-tuning run waits for its pretraining run.
  command: what started the suite, stored in each run's provenance; a
  stored run whose code or gin files changed since is reported stale, and
  trained again if rerun_stale.
  code_parts: the switch_mtf code a run's result depends on (its
  provenance's code hash).
  """
  by_name = {r.name: r for r in list(plan_runs) + list(runs)}
  needed = {r.init_from for r in by_name.values() if r.init_from} | {
      r.teacher for r in by_name.values() if r.teacher} | set(keep)
  given = {r.name for r in runs}
  to_train = [r for r in runs if _to_train(r, store, rerun_stale)]
  unfinished = [r for r in by_name.values() if not store.done(r.name)]
  # Given runs that a planned run still to come needs, and whatever the
  # given runs to train need, given or not.
  retrain = (_lost_prerequisites(by_name, store, launcher, unfinished)
             & given) | _lost_prerequisites(by_name, store, launcher,
                                            to_train)
  waiting = {r.name for r in unfinished + to_train} | retrain
  # Lost prerequisites that were not asked for go first, each before the
  # runs that need it (the jobs wait for runs started before them).
  runs = _prerequisites_first(retrain - given, by_name) + list(runs)
  lock = threading.Lock()  # the store and the log are shared by the jobs
  started: Dict[str, concurrent.futures.Future] = {}

  def locked_log(message: str) -> None:
    with lock:
      log(message)

  def one(index: int, run: claims_runs.Run) -> None:
    # A lost run's own freshness is moot (it trains again anyway): said only
    # for the others.
    why = _to_train(run, store, rerun_stale,
                    None if run.name in retrain else locked_log)
    if why == _CHANGED or (why == _STALE and run.name not in retrain):
      if why == _CHANGED:  # (ensure_fresh said why a stale one runs again)
        locked_log("claims: %s was stored with another config; running it "
                   "again%s" % (run.name, " (its checkpoint %s is gone too)"
                                % launcher.final_checkpoint(run)
                                if run.name in retrain else ""))
      # From scratch: the old run's checkpoints and logs would be resumed.
      shutil.rmtree(launcher.model_dir(run), ignore_errors=True)
    elif run.name in retrain:
      locked_log("claims: %s is stored, but its checkpoint %s is gone; "
                 "training it again (same config and seed) for the runs "
                 "that start from or learn from it: %s; its stored entry "
                 "is replaced by the new run's" % (
                     run.name, launcher.final_checkpoint(run), ", ".join(
                         sorted(r.name for r in by_name.values()
                                if run.name in (r.init_from, r.teacher)
                                and r.name in waiting))))
    elif not why:
      locked_log("claims: %s done, skipped" % run.name)
      return
    init_run = by_name.get(run.init_from) if run.init_from else None
    if run.init_from and init_run is None:
      raise ValueError("run %s starts from %s, which is not planned; plan "
                       "the pretraining run too." % (run.name, run.init_from))
    teacher = by_name.get(run.teacher) if run.teacher else None
    if run.teacher and teacher is None:
      raise ValueError("run %s learns from %s, which is not planned; plan "
                       "the teacher run too." % (run.name, run.teacher))
    for before, what in ((init_run, "pretraining run"), (teacher, "teacher")):
      if before and before.name in started:
        started[before.name].result()
      if before and not store.done(before.name):
        locked_log("claims: %s skipped: its %s %s has not run yet" % (
            run.name, what, before.name))
        return
    for before, what in ((init_run, "pretraining run"), (teacher, "teacher")):
      if before and not launcher.has_final_checkpoint(before):
        locked_log("claims: %s skipped: its %s's checkpoint %s is missing "
                   "(model dirs are scratch, not results: copy %s's model "
                   "dir from the machine that trained it, or train it again)"
                   % (run.name, what, launcher.final_checkpoint(before),
                      before.name))
        return
    locked_log("claims: [%d/%d] %s" % (index + 1, len(runs), run.name))
    try:
      entry = execute(run, launcher, init_run, command, code_parts, teacher)
    except RunFailed as e:
      locked_log("claims: FAILED %s (not stored; the next call retries it)"
                 % e)
      return
    with lock:
      store.put(run.name, entry)
      log("claims: %s final train loss %s, eval %s" % (
          run.name, entry["final_train_loss"], entry.get("final_eval")))
    if not keep_checkpoints and run.name not in needed:
      shutil.rmtree(launcher.model_dir(run), ignore_errors=True)

  with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
    for index, run in enumerate(runs):  # submitted (so started) in order
      started[run.name] = pool.submit(one, index, run)
    for future in started.values():
      future.result()  # re-raises a planning error


# Why run_all trains a run (_to_train); None: its stored entry is kept.
_NEW, _CHANGED, _STALE = "not stored", "stored with another config", "stale"


def _to_train(run: claims_runs.Run, store: store_lib.ResultStore,
              rerun_stale: bool,
              log: Optional[Callable[[str], None]] = None) -> Optional[str]:
  """Why run_all trains `run` (_NEW, _CHANGED or _STALE), or None when its
  stored entry is kept (the same config, fresh or stale but not
  rerun_stale). A lost checkpoint is not considered here. log, if given,
  hears that a stored entry is stale."""
  if not store.done(run.name):
    return _NEW
  entry = store.get(run.name)
  # Compare as stored (JSON turns tuples into lists).
  if entry.get("run") != json.loads(json.dumps(run.as_dict())):
    return _CHANGED
  if not provenance.ensure_fresh("claims: " + run.name, entry, rerun_stale,
                                 log or (lambda message: None)):
    return _STALE
  return None


def _prerequisites_first(names: Collection[str],
                         by_name: Dict[str, claims_runs.Run]
                         ) -> List[claims_runs.Run]:
  """The named runs, each after the ones among them it starts from."""
  ordered: Dict[str, claims_runs.Run] = {}
  def visit(name: str) -> None:
    if name in names and name not in ordered:
      for before in (by_name[name].init_from, by_name[name].teacher):
        if before:
          visit(before)
      ordered[name] = by_name[name]
  for name in sorted(names):
    visit(name)
  return list(ordered.values())


def _lost_prerequisites(by_name: Dict[str, claims_runs.Run],
                        store: store_lib.ResultStore,
                        launcher: claims_runs.Launcher,
                        to_train: Sequence[claims_runs.Run]) -> Set[str]:
  """Stored runs whose checkpoint is gone but that a run to train needs.

  Model dirs are scratch, lost with the machine; such a run is trained
  again with its flags, seeds and data (its numbers differ a little from
  the lost run's: these CLI runs are not bitwise reproducible between
  processes here). Followed through chains: a lost run that is needed
  needs its own start.
  """
  def lost(name: str) -> bool:
    return (name in by_name and store.done(name)
            and not launcher.has_final_checkpoint(by_name[name]))

  found: Set[str] = set()
  needing = list(to_train)
  while needing:
    run = needing.pop()
    for before in (run.init_from, run.teacher):
      if before and before not in found and lost(before):
        found.add(before)
        needing.append(by_name[before])
  return found


def execute(run: claims_runs.Run, launcher: claims_runs.Launcher,
            init_run: claims_runs.Run = None, command: str = "",
            code_parts: Sequence[str] = provenance.CLI_CODE,
            teacher: claims_runs.Run = None) -> Dict[str, Any]:
  """Trains (resuming from checkpoints), evaluates, parses; one entry."""
  init_steps = init_run.train_steps if init_run else 0
  model_dir = launcher.model_dir(run)
  train_cmd = launcher.train_command(run, init_run, init_steps, teacher)
  eval_cmd = (launcher.eval_command(run, init_run, init_steps, teacher)
              if run.eval_kind != "none" else None)
  attempt = len([f for f in os.listdir(model_dir) if f.startswith("train.")]
                ) if os.path.isdir(model_dir) else 0
  os.makedirs(model_dir, exist_ok=True)
  train_log = os.path.join(model_dir, "train.%d.log" % attempt)
  # Taken before training: the code and gin files the CLI process loads
  # now, not what the checkout holds when the run ends hours later.
  started = provenance.record(
      command, provenance.gin_files_of_flags(train_cmd + (eval_cmd or [])),
      code_parts)
  with provenance.LoadMonitor(interval=5.0) as monitor:
    code, train_seconds = launcher.execute(train_cmd, train_log)
  texts = []
  for index in range(attempt + 1):
    with open(os.path.join(model_dir, "train.%d.log" % index)) as f:
      texts.append(f.read())
  train = claims_runs.parse_train_logs(texts)
  data = run_data.collect(model_dir)
  entry: Dict[str, Any] = {
      "run": run.as_dict(),
      "train_command": " ".join(shlex.quote(c) for c in train_cmd),
      "eval_command": (" ".join(shlex.quote(c) for c in eval_cmd)
                       if eval_cmd else None),
      "provenance": started,
      "load": monitor.summary(),
      "train_exit_code": code,
      "train_seconds": round(train_seconds, 1),
      "steps_per_sec": data.steps_per_second,
      "params": data.parameters,
      "moe_layers": len(data.router),
      "diverged": train["diverged"],
      "steps_logged": len(train["losses"]),
      "train_curve_10": claims_runs.curve(train["losses"], 10, 10),
      "train_curve_100": claims_runs.curve(train["losses"], FINAL_WINDOW, 50),
  }
  final = claims_runs.curve(train["losses"], FINAL_WINDOW, 1)
  entry["final_train_loss"] = final[-1][1] if final else None
  entry["tokens_dropped_fraction"] = _mean_over_layers(
      data, "tokens_dropped_fraction")
  if code != 0 and not train["diverged"]:
    # Not a result (a crash or a kill): stored nothing, so the next call
    # resumes this run from its last checkpoint.
    raise RunFailed("%s: training exited with %d; see %s"
                    % (run.name, code, train_log))
  if train["diverged"] or run.eval_kind == "none":
    return entry
  eval_log = os.path.join(model_dir, "eval.log")
  code, eval_seconds = launcher.execute(eval_cmd, eval_log)
  with open(eval_log) as f:
    evaluation = claims_runs.parse_eval_log(f.read())
  entry["eval_seconds"] = round(eval_seconds, 1)
  entry["eval"] = {str(step): metrics
                   for step, metrics in sorted(evaluation.items())}
  if code != 0:
    raise RunFailed("%s: evaluation exited with %d; see %s"
                    % (run.name, code, eval_log))
  if evaluation:
    last = max(evaluation)
    entry["final_eval"] = dict(evaluation[last], step=last)
  return entry


def _mean_over_layers(data: run_data.RunData, metric: str) -> List:
  """(step, mean over the Switch layers) of a router metric."""
  by_step: Dict[float, List[float]] = {}
  for layer in data.router.values():
    for step, value in layer.scalars.get(metric, []):
      by_step.setdefault(step, []).append(value)
  return [(int(s), round(sum(v) / len(v), 5))
          for s, v in sorted(by_step.items())]


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

