"""Where a stored result came from: code, gin files, command, machine, load.

Stored beside every benchmark result so that a committed number says what
produced it, and so that a result whose code or gin files changed since is
reported as stale instead of being silently reused (`stale_reasons`).
"""

import functools
import hashlib
import os
import platform
import re
import subprocess
import threading
import time
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple)

import gin
import pkg_resources

from switch_mtf.cli import gin_paths
from switch_mtf.cli import launcher

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_REPO_DIR = os.path.dirname(_PACKAGE_DIR)
# What determines a CLI run's numbers (the layer, the data, the CLI plumbing
# and the training loop) and a speed block's (the layer, the graph it is
# timed in, the timing code): the modules that produce a measurement, not
# those that report it, so a report's edit re-measures nothing.
CLI_CODE = ("layer", "tasks", "cli", "training")
SPEED_CODE = ("layer", "bench/speed/layer_graph.py", "bench/speed/layers.py",
              "bench/speed/timing.py", "bench/common/tiny_models.py")
# The CPU extensions TensorFlow's kernels speed depends on: the same model
# name ("AMD EPYC", "Intel Xeon") covers machines with and without them, and
# without native bfloat16 a bfloat16 step is emulated, many times float32's.
SPEED_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                   "amx_tile", "amx_bf16")
_INCLUDE = re.compile(r"""^\s*include\s+['"]([^'"]+)['"]""", re.M)


def code_hash(parts: Sequence[str], package_dir: str = _PACKAGE_DIR) -> str:
  """sha256 over the .py files (path and bytes) of switch_mtf's `parts`."""
  digest = hashlib.sha256()
  for part in sorted(parts):
    root = os.path.join(package_dir, part)
    paths = [root] if os.path.isfile(root) else sorted(
        os.path.join(d, f) for d, _, files in os.walk(root)
        for f in files if f.endswith(".py"))
    for path in paths:
      digest.update(os.path.relpath(path, package_dir).encode())
      stat = os.stat(path)
      digest.update(_file_bytes(path, stat.st_mtime_ns, stat.st_size))
  return digest.hexdigest()


@functools.lru_cache(maxsize=4096)
def _file_bytes(path: str, unused_mtime_ns: int, unused_size: int) -> bytes:
  """A source file's bytes, read once per version: reports check every
  stored entry's code hash."""
  with open(path, "rb") as f:
    return f.read()


def git_state(directory: str = _REPO_DIR) -> Dict[str, Any]:
  """Commit and dirty flag of the checkout holding directory (None outside
  a git checkout; default: this project's).

  Dirty means tracked files differ from the commit, outside results/ (which
  the benchmark itself writes).
  """
  def git(*args):
    return subprocess.run(["git", "-C", directory, *args], check=True,
                          capture_output=True, text=True).stdout.strip()
  try:
    commit = git("rev-parse", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--",
                  ":/", ":(exclude,top)results")
  except (OSError, subprocess.CalledProcessError):
    return {"commit": None, "dirty": None}
  return {"commit": commit, "dirty": bool(changed)}


def _gin_search_path() -> List[str]:
  """Our gin folder, T5's and Mesh TF's: where the CLI finds gin files."""
  from mesh_tensorflow.transformer import utils  # pylint: disable=g-import-not-at-top
  launcher.import_t5_models_without_torch()
  return [gin_paths.gin_dir(),
          pkg_resources.resource_filename("t5.models", "gin"),
          pkg_resources.resource_filename(utils.__name__, "gin")]


def gin_files(names: Sequence[str]) -> Dict[str, Dict[str, str]]:
  """name -> {path, sha256, text} of each gin file and what it includes."""
  search = _gin_search_path()
  records, pending = {}, list(names)
  while pending:
    name = pending.pop(0)
    if name in records:
      continue
    path = next((os.path.join(d, name) for d in [""] + search
                 if os.path.isfile(os.path.join(d, name))), None)
    if path is None:
      raise FileNotFoundError(
          "gin file %s is not in %s" % (name, ", ".join(search)))
    with open(path) as f:
      text = f.read()
    records[name] = {"path": os.path.abspath(path), "text": text,
                     "sha256": hashlib.sha256(text.encode()).hexdigest()}
    pending += _INCLUDE.findall(text)
  return records


def gin_files_of_flags(flags: Sequence[str]) -> List[str]:
  """The --gin_file values of a CLI command."""
  return [f.split("=", 1)[1] for f in flags if f.startswith("--gin_file=")]


def machine() -> Dict[str, Any]:
  """CPU model, vector extensions, cores and software versions."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model, flags = platform.processor(), None
  try:
    with open("/proc/cpuinfo") as f:
      cpuinfo = f.read()
  except OSError:
    cpuinfo = ""
  found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
  model = found.group(1).strip() if found else model
  found = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
  if found:
    flags = sorted(set(found.group(1).split()) & set(SPEED_CPU_FLAGS))
  return {"cpu_model": model, "cpu_flags": flags, "cores": os.cpu_count(),
          "platform": platform.platform(),
          "python": platform.python_version(), "tensorflow": tf.__version__,
          "gin": gin.__version__ if hasattr(gin, "__version__") else None}


def record(command: str, gin_names: Sequence[str],
           code_parts: Sequence[str]) -> Dict[str, Any]:
  """Everything that says what produced a result, except the load."""
  return {"command": command, **git_state(),
          "code_sha256": code_hash(code_parts), "code_parts": list(code_parts),
          "gin_files": gin_files(gin_names), "machine": machine(),
          "recorded": time.strftime("%Y-%m-%d %H:%M:%S")}


def stale_reasons(stored: Optional[Dict[str, Any]]) -> List[str]:
  """Why a stored provenance no longer describes what the code would run."""
  if not stored:
    return ["recorded without provenance"]
  reasons = []
  if code_hash(stored["code_parts"]) != stored["code_sha256"]:
    reasons.append("code of %s changed" % ", ".join(stored["code_parts"]))
  for name, was in sorted(stored["gin_files"].items()):
    try:
      now = gin_files([name])[name]["sha256"]
    except FileNotFoundError:
      now = None
    if now != was["sha256"]:
      reasons.append("gin file %s changed" % name)
  return reasons


def ensure_fresh(name: str, entry: Dict[str, Any], rerun_stale: bool,
                 log: Callable[[str], None]) -> bool:
  """Whether a stored entry may be kept; says so when it is stale.

  A stale entry is kept (and marked stale in the reports) unless
  rerun_stale, when it is measured again.
  """
  reasons = stale_reasons(entry.get("provenance"))
  if not reasons:
    return True
  log("%s is STALE (%s); %s" % (
      name, "; ".join(reasons), "measuring it again" if rerun_stale else
      "kept and marked stale in the report (--rerun_stale measures it "
      "again)"))
  return not rerun_stale


def report_lines(items: Iterable[Tuple[str, Dict[str, Any]]]) -> List[str]:
  """Markdown table: each stored entry's commit, load and staleness."""
  lines = ["| result | commit | other processes' CPU share (mean / max) | "
           "stale? |", "|---|---|---|---|"]
  for name, entry in items:
    record = entry.get("provenance") or {}
    load = entry.get("load") or {}
    commit = record.get("commit")
    commit = ("%s%s" % (commit[:10], " (dirty)" if record.get("dirty")
                        else "")) if commit else "–"
    share = ("%.1f%% / %.1f%%" % (100 * load["other_cpu_share_mean"],
                                  100 * load["other_cpu_share_max"])
             if "other_cpu_share_mean" in load else "not recorded")
    stale = "; ".join(stale_reasons(record or None)) or "no"
    lines.append("| %s | %s | %s | %s |" % (name, commit, share, stale))
  return lines


def _cpu_jiffies() -> Dict[str, int]:
  """Busy and total jiffies of the whole machine (/proc/stat)."""
  with open("/proc/stat") as f:
    values = [int(v) for v in f.readline().split()[1:]]
  idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
  return {"busy": sum(values) - idle, "total": sum(values)}


def _tree_jiffies(root_pid: int) -> Dict[int, int]:
  """utime + stime of root_pid and all its descendants, by pid."""
  parents, used = {}, {}
  for name in os.listdir("/proc"):
    if not name.isdigit():
      continue
    try:
      with open("/proc/%s/stat" % name) as f:
        stat = f.read()
    except OSError:
      continue  # exited meanwhile
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm)"
    parents[int(name)] = int(fields[1])
    used[int(name)] = int(fields[11]) + int(fields[12])
  ours = {}
  for pid in used:
    p, seen = pid, set()
    while p and p not in seen:
      if p == root_pid:
        ours[pid] = used[pid]
        break
      seen.add(p)
      p = parents.get(p)
  return ours


class LoadMonitor:
  """Samples the machine's load while a measurement runs (Linux /proc).

  The other share is the CPU used by processes outside this process and its
  descendants, as a fraction of all cores; the own share is theirs. A
  process that exits between two samples loses its last partial interval,
  which then counts as "other": the share errs towards busy.
  """

  def __init__(self, interval: float = 0.5):
    self.interval = interval
    self.other_shares: List[float] = []
    self.own_shares: List[float] = []
    self.loadavg: List[float] = []
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._loop, daemon=True)

  def __enter__(self) -> "LoadMonitor":
    self._last = (_cpu_jiffies(), _tree_jiffies(os.getpid()))
    self._thread.start()
    return self

  def __exit__(self, *exc) -> None:
    self._stop.set()
    self._thread.join()
    self._sample()

  def _loop(self) -> None:
    while not self._stop.wait(self.interval):
      self._sample()

  def _sample(self) -> None:
    cpu, tree = _cpu_jiffies(), _tree_jiffies(os.getpid())
    last_cpu, last_tree = self._last
    total = cpu["total"] - last_cpu["total"]
    if total > 0:
      ours = sum(used - last_tree.get(pid, 0) for pid, used in tree.items())
      other = cpu["busy"] - last_cpu["busy"] - ours
      self.other_shares.append(min(1.0, max(0.0, other / total)))
      self.own_shares.append(min(1.0, max(0.0, ours / total)))
    with open("/proc/loadavg") as f:
      self.loadavg.append(float(f.read().split()[0]))
    self._last = (cpu, tree)

  def summary(self) -> Dict[str, Any]:
    shares, own = self.other_shares or [0.0], self.own_shares or [0.0]
    return {"other_cpu_share_mean": round(sum(shares) / len(shares), 4),
            "other_cpu_share_max": round(max(shares), 4),
            "own_cpu_share_mean": round(sum(own) / len(own), 4),
            "loadavg_1m_max": max(self.loadavg) if self.loadavg else None,
            "samples": len(self.other_shares)}
