"""Runs phases (train, eval) through the real CLI, resumably, with progress.

Each phase is one `switch_mtf_transformer` subprocess (the torch-free
`t5_mesh_transformer`) with our gin files. What a phase has done is read
from its outputs, never from a separate state file: a training phase is
done when its model dir's checkpoint state is at the target step, an eval
phase when its metric is in the eval event files. So a rerun after Ctrl-C,
`kill` or a crash skips finished phases and the estimator resumes an
unfinished training phase from its last complete checkpoint; leftovers of an
interrupted checkpoint save are removed first and the checkpoint to resume
from is read in full before it is used (checkpoints.py).

The CLI prints the loss of every training step but writes it to TensorBoard
only every 100 steps; the runner copies the printed per-step loss into
`<model_dir>/train_per_step/` event files, so curves and wall-clock are
per step.
"""

import dataclasses
import fcntl
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Callable, List, Optional, Sequence

import tensorflow as tf

from switch_mtf.cli import checkpoints
from switch_mtf.cli import events
from switch_mtf.cli import progress as cli_progress

TRAIN = "train"
DECODE_EVAL = "eval"
PERPLEXITY_EVAL = "perplexity_eval"
KINDS = (TRAIN, DECODE_EVAL, PERPLEXITY_EVAL)

LAUNCHER = os.path.join(os.path.dirname(sys.executable),
                        "switch_mtf_transformer")
LOG_DIR = "logs"
LOCK_FILE = ".pipeline.lock"
# Runs the CLI under a guard that dies with this process (Linux prctl
# PR_SET_PDEATHSIG = 1): `kill -9` of the pipeline must not leave an orphan
# training in the model dir that a rerun would then race with.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "  sys.exit('parent exited before the CLI started')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n")


@dataclasses.dataclass(frozen=True)
class Phase:
  """One CLI run.

  Attributes:
    name: shown in progress lines, e.g. "pretrain switch".
    kind: TRAIN, DECODE_EVAL or PERPLEXITY_EVAL.
    model_dir: the CLI's --model_dir.
    flags: every other CLI flag.
    target_step: TRAIN: the global step to reach (`utils.run.train_steps`);
      evals: the checkpoint step evaluated.
    result_dir: evals: the directory whose event files receive the metrics
      (a glob pattern: Mesh TF names perplexity-eval dirs after the number
      of examples).
    result_tag: evals: a tag (or tag prefix ending in "/") that is written
      at `target_step` once the eval has finished.
  """
  name: str
  kind: str
  model_dir: str
  flags: Sequence[str]
  target_step: int
  result_dir: Optional[str] = None
  result_tag: Optional[str] = None

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError("Phase kind %r is not one of %s." % (self.kind, KINDS))
    if self.kind != TRAIN and not (self.result_dir and self.result_tag):
      raise ValueError("Eval phase %r needs result_dir and result_tag to "
                       "know when it is done." % self.name)

  def command(self, launcher: str = LAUNCHER) -> List[str]:
    return [launcher, "--model_dir=" + self.model_dir, *self.flags]


@dataclasses.dataclass
class Outcome:
  phase: Phase
  skipped: bool
  seconds: float = 0.0
  resumed_from: Optional[int] = None
  final_step: Optional[int] = None
  startup_seconds: Optional[float] = None  # to the first training step
  steps_per_second: Optional[float] = None
  # Mean 1-minute load average while it ran: above the core count, other
  # processes shared the CPU and its times are not those of a solo run.
  load_average: Optional[float] = None
  # CPU time (user + system) of the CLI process: less dependent on other
  # processes than wall-clock time.
  cpu_seconds: Optional[float] = None


class PhaseFailed(RuntimeError):
  pass


class Interrupted(RuntimeError):
  pass


def is_done(phase: Phase) -> bool:
  """Whether the phase's outputs are complete (see module docstring)."""
  if phase.kind == TRAIN:
    latest = checkpoints.latest_step(phase.model_dir)
    return latest is not None and latest >= phase.target_step
  tag = phase.result_tag

  def keep(name):
    return name.startswith(tag) if tag.endswith("/") else name == tag
  for directory in tf.io.gfile.glob(phase.result_dir):
    scalars, _ = events.read_scalars(directory, keep_tag=keep)
    if any(p.step == phase.target_step
           for points in scalars.values() for p in points):
      return True
  return False


class RunDirLock:
  """An exclusive lock on a run dir, so two pipelines never share it."""

  def __init__(self, run_dir: str):
    os.makedirs(run_dir, exist_ok=True)
    self._path = os.path.join(run_dir, LOCK_FILE)
    self._file = None

  def __enter__(self):
    self._file = open(self._path, "a+")
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self._file.seek(0)
      holder = self._file.read().strip() or "another process"
      self._file.close()
      raise RuntimeError(
          "%s is in use by %s. Wait for it to finish (or stop it), or "
          "choose another run directory." % (os.path.dirname(self._path),
                                             holder)) from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write("pid %d\n" % os.getpid())
    self._file.flush()
    return self

  def __exit__(self, *exc):
    fcntl.flock(self._file, fcntl.LOCK_UN)
    self._file.close()


def run_tool(name: str, body: Callable[[], int],
             failure_code: int = 1) -> int:
  """Runs a command-line tool's body with the tools' shared exit contract.

  Ctrl-C, `kill` and hang-ups stop the running child and return 130 with how
  to resume; ValueError and RuntimeError (PhaseFailed, LayoutError, bad
  flags: the user's to fix) print "<name> failed: ..." without a traceback
  and return failure_code; otherwise body's exit code.
  """
  raise_keyboard_interrupt_on_sigterm()
  try:
    return body()
  except (Interrupted, KeyboardInterrupt) as error:
    print("\n%s" % (error if isinstance(error, Interrupted) else
                    "Interrupted. Run the same command again to resume."),
          file=sys.stderr)
    return 130
  except (ValueError, RuntimeError) as error:
    print("\n%s failed: %s" % (name, error), file=sys.stderr)
    return failure_code


def raise_keyboard_interrupt_on_sigterm() -> None:
  """`kill PID` stops the pipeline like Ctrl-C: child stopped, clean exit."""
  def handler(signum, frame):
    del frame
    raise KeyboardInterrupt("signal %d" % signum)
  signal.signal(signal.SIGTERM, handler)
  signal.signal(signal.SIGHUP, handler)


class _Display:
  """Progress on a terminal (one rewritten line) or in a log (a line each
  `interval` seconds)."""

  def __init__(self, out: IO[str], interval: float):
    self._out = out
    self._tty = hasattr(out, "isatty") and out.isatty()
    self._interval = 0.5 if self._tty else interval
    self._last = -float("inf")
    self._width = 0

  def show(self, text: str, force: bool = False) -> None:
    now = time.monotonic()
    if not force and now - self._last < self._interval:
      return
    self._last = now
    if self._tty:
      padding = " " * max(self._width - len(text), 0)
      self._out.write("\r" + text + padding)
      self._width = len(text)
    else:
      self._out.write(text + "\n")
    self._out.flush()

  def end_line(self) -> None:
    """Ends the rewritten status line, if any, so that it stays visible."""
    if self._tty and self._width:
      self._out.write("\n")
      self._out.flush()
      self._width = 0

  def say(self, text: str) -> None:
    """A permanent line."""
    self.end_line()
    self._out.write(text + "\n")
    self._out.flush()


def _children_cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


class _LoadSampler:
  """The 1-minute load average, sampled every few seconds."""

  def __init__(self, every_seconds: float = 5.0):
    self._every = every_seconds
    self._last = -float("inf")
    self._samples: List[float] = []

  def sample(self) -> None:
    now = time.monotonic()
    if now - self._last >= self._every and hasattr(os, "getloadavg"):
      self._last = now
      self._samples.append(os.getloadavg()[0])

  def mean(self) -> Optional[float]:
    return sum(self._samples) / len(self._samples) if self._samples else None


def _lines_of(process: subprocess.Popen) -> "queue.Queue[Optional[str]]":
  """The process's output lines, read by a thread; None at the end."""
  lines: "queue.Queue[Optional[str]]" = queue.Queue()

  def pump():
    for line in process.stdout:
      lines.put(line)
    lines.put(None)
  threading.Thread(target=pump, daemon=True).start()
  return lines


def _spawn(command: List[str]) -> subprocess.Popen:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="1", CUDA_VISIBLE_DEVICES="",
             PYTHONUNBUFFERED="1")
  if sys.platform.startswith("linux"):
    command = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()),
               *command]
  return subprocess.Popen(command, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1,
                          env=env, errors="replace")


def _stop(process: subprocess.Popen) -> None:
  """SIGTERM, then SIGKILL, until it exits.

  Not SIGINT: the CLI can take many seconds to notice a KeyboardInterrupt
  (it is checked between steps, and a checkpoint save is one long call),
  and an immediate stop is safe: an interrupted save is never restored and
  its leftovers are removed before the next run (checkpoints.py).
  """
  for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
    if process.poll() is not None:
      return
    try:
      process.send_signal(sig)
      process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
      continue
    except KeyboardInterrupt:
      continue  # A second Ctrl-C: escalate.


def _tail(path: str, lines: int = 30) -> str:
  with open(path, errors="replace") as f:
    return "".join(f.readlines()[-lines:])


def _prepare(phase: Phase, display: _Display, label: str) -> Optional[int]:
  """Removes half-written checkpoints; returns the verified resume step."""
  if phase.kind != TRAIN:
    checkpoints.verify(phase.model_dir, phase.target_step)
    return None
  for path in checkpoints.remove_partial(phase.model_dir):
    display.say("[%s] removed leftover of an interrupted checkpoint save: "
                "%s" % (label, path))
  latest = checkpoints.latest_step(phase.model_dir)
  if latest is not None:
    checkpoints.verify(phase.model_dir, latest)
    display.say("[%s] resuming from the checkpoint at step %d of %d"
                % (label, latest, phase.target_step))
  return latest


def run_phase(phase: Phase, label: str, out: Optional[IO[str]] = None,
              launcher: str = LAUNCHER, status_interval: float = 15.0,
              later_seconds: Optional[float] = None) -> Outcome:
  """Runs one phase unless done; raises PhaseFailed / Interrupted.

  `later_seconds` (the estimated time of the phases after this one) turns
  the phase's ETA into one for the whole run.
  """
  out = out or sys.stdout
  display = _Display(out, status_interval)
  if is_done(phase):
    display.say("[%s] already done (%s at step %d): skipped"
                % (label, phase.model_dir, phase.target_step))
    return Outcome(phase, skipped=True, final_step=phase.target_step)
  resumed_from = _prepare(phase, display, label)
  os.makedirs(os.path.join(phase.model_dir, LOG_DIR), exist_ok=True)
  log_path = os.path.join(phase.model_dir, LOG_DIR, phase.kind + ".log")
  command = phase.command(launcher)
  tracker = cli_progress.ProgressTracker(
      label, phase.target_step if phase.kind == TRAIN else None)
  tracker.later_seconds = later_seconds
  parser = cli_progress.LogParser()
  writer = (events.ScalarWriter(
      os.path.join(phase.model_dir, events.PER_STEP_DIR))
            if phase.kind == TRAIN else None)
  started = time.monotonic()
  cpu_before = _children_cpu_seconds()
  loads = _LoadSampler()
  with open(log_path, "a") as log:
    log.write("\n==== %s: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"),
                                   " ".join(command)))
    log.flush()
    process = _spawn(command)
    lines = _lines_of(process)
    try:
      while True:
        try:
          line = lines.get(timeout=1.0)
        except queue.Empty:  # Silent (graph building...): keep time moving.
          display.show(tracker.status())
          continue
        if line is None:
          break
        log.write(line)
        loads.sample()
        event = parser.feed(line)
        if event is None:
          display.show(tracker.status())
          continue
        tracker.update(event)
        if isinstance(event, cli_progress.StepLoss) and writer:
          writer.write(events.PER_STEP_LOSS_TAG, event.step, event.loss)
        display.show(tracker.status(),
                     force=not isinstance(event, cli_progress.StepLoss))
      returncode = process.wait()
    except BaseException as error:  # Never leave the CLI running behind us.
      if not isinstance(error, KeyboardInterrupt):
        _stop(process)
        raise
      display.say("[%s] interrupted at step %s; stopping the CLI..."
                  % (label, tracker.step))
      _stop(process)
      raise Interrupted(
          "Interrupted during %s. Run the same command again to resume: "
          "finished phases are skipped and training continues from the "
          "last checkpoint (step %s)."
          % (label, checkpoints.latest_step(phase.model_dir))) from None
    finally:
      if writer:
        writer.close()
  display.show(tracker.status(), force=True)
  display.end_line()
  if returncode != 0:
    raise PhaseFailed(
        "[%s] %s exited with code %d. Last lines of its log (full log: %s):"
        "\n%s" % (label, os.path.basename(launcher), returncode, log_path,
                  _tail(log_path)))
  if not is_done(phase):
    raise PhaseFailed(
        "[%s] the CLI exited normally but its result is missing (%s at step "
        "%d); see %s." % (label, phase.result_dir or phase.model_dir,
                          phase.target_step, log_path))
  if phase.kind == TRAIN:
    checkpoints.verify(phase.model_dir, phase.target_step)
  return Outcome(phase, skipped=False, seconds=time.monotonic() - started,
                 resumed_from=resumed_from, final_step=tracker.step,
                 startup_seconds=tracker.startup_seconds,
                 steps_per_second=tracker.steps_per_second,
                 load_average=loads.mean(),
                 cpu_seconds=_children_cpu_seconds() - cpu_before)


def estimate_seconds(phases: Sequence[Phase], startup_seconds: float,
                     steps_per_second: float,
                     eval_seconds: float) -> float:
  """Rough time the phases still need, from what earlier phases took."""
  total = 0.0
  for phase in phases:
    if is_done(phase):
      continue
    if phase.kind == TRAIN:
      done = checkpoints.latest_step(phase.model_dir) or 0
      total += startup_seconds + max(phase.target_step - done, 0) / (
          steps_per_second)
    else:
      total += eval_seconds
  return total


def run_phases(phases: Sequence[Phase], out: Optional[IO[str]] = None,
               launcher: str = LAUNCHER,
               on_outcome: Optional[Callable[[Outcome], None]] = None
               ) -> List[Outcome]:
  """Runs the phases in order; each is labelled `i/n name`.

  Once a training phase has run, the progress line also estimates the time
  of all remaining phases, from that phase's start-up and speed.
  `on_outcome` is called after each phase, so that what finished is kept
  even if a later phase is interrupted.
  """
  out = out or sys.stdout
  outcomes = []
  measured = None  # (start-up s, steps/s, eval phase s)
  for index, phase in enumerate(phases):
    later = (estimate_seconds(phases[index + 1:], *measured)
             if measured else None)
    outcome = run_phase(phase, "%d/%d %s" % (index + 1, len(phases),
                                             phase.name),
                        out, launcher, later_seconds=later)
    outcomes.append(outcome)
    if on_outcome:
      on_outcome(outcome)
    if outcome.startup_seconds and outcome.steps_per_second:
      evals = [o.seconds for o in outcomes
               if not o.skipped and o.phase.kind != TRAIN]
      measured = (outcome.startup_seconds, outcome.steps_per_second,
                  evals[-1] if evals else outcome.startup_seconds)
  return outcomes
