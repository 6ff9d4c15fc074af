"""`make bench` / `make bench-quick`: which parts run, where results go.

Parts (each resumable, each with its own JSON under the results folder):
  speed    layer blocks: Switch (both dispatch modes), MoE1D switch/top-2,
           dense; group-size and tokens sweeps        -> speed/layers.json
  models   whole training steps, experts doubling     -> speed/models.json
  paper    paper models: memory and all-to-all        -> speed/paper.json
  profile  per-op profile of the layers at cf 1.0     -> speed/profile.json
  cluster  the cluster layouts over worker processes:
           bytes between tasks, step time vs one process -> speed/cluster.json
  claims   the paper's claims through the CLI         -> claims/runs.json
  headline the headline experiment (issue 18): dense and Switch
           E8/E32/E128 x 3 seeds on the large Wikipedia
           corpus                                     -> headline/runs.json
  headline_distill  paper Table 6 on the same protocol, after the
           grid: four students per seed from the best Switch
           teacher, if it is clearly better than dense -> headline/runs.json
Quick mode runs speed (a smaller grid), models (fewer experts), paper and
one seed of the sample-efficiency curve at 200 steps, into quick/.

Every invocation (but --report_only) appends its wall-clock time, parts,
filters, results stored, commit and the machine's load to invocations.json
there (common/invocations.py): how long `make bench` takes is a
measurement, not an estimate. It does so however the invocation ends:
"completed", "failed" (an exception, named) or "interrupted" (Ctrl-C,
SIGTERM), with the results it stored until then.
"""

import contextlib
import dataclasses
import fnmatch
import functools
import os
import signal
import threading
import time
import traceback
from typing import Callable, Dict, Iterator, List, Optional, Sequence

from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import headline_distill
from switch_mtf.bench.claims import headline_report
from switch_mtf.bench.claims import plan as claims_plan
from switch_mtf.bench.claims import report as claims_report
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import invocations
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.speed import cluster as cluster_bench
from switch_mtf.bench.speed import layer_graph
from switch_mtf.bench.speed import layers as speed
from switch_mtf.bench.speed import model_step
from switch_mtf.bench.speed import profile as profile_lib
from switch_mtf.bench.speed import report as speed_report
from switch_mtf.bench.speed import scaling
from switch_mtf.bench.speed import timing
from switch_mtf.cli import gin_paths
from switch_mtf.tasks import wiki_large

PARTS = ("speed", "models", "paper", "profile", "cluster", "claims",
         "headline", "headline_distill")
PRECISION_KEY = "tiny/precision"  # paper Table 2's speed column
QUICK_PARTS = ("speed", "models", "paper", "claims")
SPEED_PARTS = ("speed", "models", "paper", "profile", "cluster")
# The result files of the speed parts (speed -> layers.json).
SPEED_STORES = ("layers", "models", "paper", "profile", "cluster")
DEFAULT_WORK_DIR = os.path.join(gin_paths.OUTPUT_ROOT, "bench")
# Whole models are built from gin (analysis) besides the layer.
MODEL_CODE = provenance.SPEED_CODE + ("analysis", "bench/speed/model_step.py",
                                      "bench/speed/scaling.py")
PROFILE_CODE = provenance.SPEED_CODE + ("bench/speed/profile.py",)
CLUSTER_CODE = MODEL_CODE + ("cluster", "bench/speed/cluster.py")
FULL_PROTOCOL = timing.Protocol(warmup=3, rounds=6, iterations=5,
                                forward_runs=12)
QUICK_PROTOCOL = timing.Protocol(warmup=2, rounds=3, iterations=3,
                                 forward_runs=5)
MODEL_PROTOCOL = timing.Protocol(warmup=3, rounds=5, iterations=4,
                                 forward_runs=0)
QUICK_MODEL_PROTOCOL = timing.Protocol(warmup=2, rounds=3, iterations=3,
                                       forward_runs=0)
# The models part's switch_tiny expert counts (the experts-doubling table);
# up to 128, the expert counts of the headline experiment.
MODEL_EXPERTS = (4, 8, 16, 32, 64, 128)
QUICK_MODEL_EXPERTS = (4, 8, 16)

# The paper's models on the model zoo's TPU layouts (gin/layouts): Base and
# Large as in Table 1 (32 TPUv3 cores, expert + data parallelism, §5.5),
# XXL with model parallelism too (§5.6), Switch-C one expert per core; the
# dense baselines data-parallel (+ model-parallel for XXL). Batch: the
# paper's 2^20 tokens (2048 x 512 inputs, 114 targets).
PAPER_BATCH = (
    "utils.run.batch_size = ('tokens_per_batch', 1048576)",
    "utils.run.sequence_length = {'inputs': 512, 'targets': 114}",
)
PAPER_MODELS = (
    ("T5-Base", "models/t5_base.gin", "layouts/v3-32_dp.gin"),
    ("Switch-Base (128)", "models/switch_base.gin", "layouts/v3-32_ep.gin"),
    ("MoE-Base (top-2, 128)", "models/moe_base.gin", "layouts/v3-32_ep.gin"),
    ("T5-Large", "models/t5_large.gin", "layouts/v3-32_dp.gin"),
    ("Switch-Large (128)", "models/switch_large.gin", "layouts/v3-32_ep.gin"),
    ("T5-XXL", "models/t5_xxl.gin", "layouts/v3-512_dp_mp.gin"),
    ("Switch-XXL (128)", "models/switch_xxl.gin",
     "layouts/v3-512_dp_mp_ep.gin"),
    ("Switch-C (2048)", "models/switch_c.gin", "layouts/v3-2048_ep.gin"),
)


@dataclasses.dataclass
class Options:
  quick: bool = False
  results_dir: str = "results"
  work_dir: str = DEFAULT_WORK_DIR
  parts: Sequence[str] = ()
  threads: int = 0
  report_only: bool = False
  keep_checkpoints: bool = False
  jobs: int = 1  # claim runs at a time
  run_filter: Sequence[str] = ()  # fnmatch patterns of claim run names
  block_filter: Sequence[str] = ()  # fnmatch patterns of speed block names
  command: Optional[str] = None
  rerun_stale: bool = False  # measure stale stored results again
  unguarded: bool = False  # claim runs without runs/reliable.gin


def _dirs(options: Options) -> Dict[str, str]:
  root = results_root(options)
  return {"speed": os.path.join(root, "speed"),
          "claims": os.path.join(root, "claims"),
          "headline": os.path.join(root, "headline")}


def _gin_names(specs: Sequence[model_step.ModelSpec]) -> List[str]:
  return sorted({name for spec in specs for name in spec.gin_files})


def model_spec_groups(quick: bool
                      ) -> Dict[str, Dict[str, model_step.ModelSpec]]:
  """The models part's entries in speed/models.json, in the order measured:
  key -> the whole models timed side by side in it."""
  experts = QUICK_MODEL_EXPERTS if quick else MODEL_EXPERTS
  tiny = model_step.tiny_specs(experts)
  gather = model_step.gather_switch_spec()
  tiny[gather.name] = gather
  groups = {"tiny/E" + ",".join(map(str, experts)): tiny}
  if not quick:
    # The headline protocol's models: its report's wall-clock axis.
    groups[headline.speed_key()] = headline.speed_specs()
    groups[PRECISION_KEY] = model_step.precision_specs()
  return groups


# Profiled layers: every kind at the anchor's size, and the Switch modes at
# 128 experts, where they are furthest from their roofline.
PROFILES = tuple((kind, 8) for kind in layer_graph.KINDS) + tuple(
    (kind, 128) for kind in (layer_graph.SWITCH_GATHER,
                             layer_graph.SWITCH_EINSUM))


def _profile(kind: str, num_experts: int, threads: int,
             log: Callable[[str], None]) -> Dict:
  """One layer's profile, taken on an idle machine, with its load."""
  built = layer_graph.BuiltLayer(
      layer_graph.LayerSpec(kind=kind, num_experts=num_experts),
      threads=threads)
  try:
    return profile_lib.profile_on_idle_machine(built, log)
  finally:
    built.close()


def results_root(options: Options) -> str:
  return os.path.join(options.results_dir, "quick") if options.quick else (
      options.results_dir)


def run(options: Options, log: Callable[[str], None] = print) -> List[str]:
  """Runs the requested parts (resumably), writes reports; returns them."""
  parts = list(options.parts) or list(QUICK_PARTS if options.quick
                                      else PARTS)
  for part in parts:
    if part not in PARTS:
      raise ValueError("unknown part %r; use some of %s" % (
          part, ", ".join(PARTS)))
  stores: Dict[str, store_lib.ResultStore] = {}
  if options.report_only:
    return _run_parts(options, parts, log, stores)
  with _recorded_invocation(options, parts, stores):
    return _run_parts(options, parts, log, stores)


@contextlib.contextmanager
def _recorded_invocation(options: Options, parts: Sequence[str],
                         stores: Dict[str, store_lib.ResultStore]
                         ) -> Iterator[None]:
  """Records the invocation in invocations.json however it ends.

  outcome: "completed"; "failed" (an exception, named in "error");
  "interrupted" (Ctrl-C, or SIGTERM: recorded, then the signal's default
  action ends the process as before, even if recording fails; a SIGTERM
  while another outcome is being recorded ends it once that is written).
  results_stored counts the results the invocation stored in `stores`
  (filled as the parts open them) until then, so the time of an
  interrupted invocation is not lost nor counted as a finished part's.
  """
  started, clock = time.strftime("%Y-%m-%d %H:%M:%S"), time.monotonic()
  filtered = bool(options.run_filter or options.block_filter)
  monitor = provenance.LoadMonitor(interval=5.0)
  done: List[str] = []  # the outcome, once invocations.json holds it
  writing: List[bool] = []  # a record is being written
  pending: List[int] = []  # a signal that came meanwhile, delivered after

  def record(outcome: str, error: Optional[str] = None) -> None:
    if done or writing:  # once (a SIGTERM during a record waits for it)
      return
    writing.append(True)
    try:
      # list(): claim jobs' threads may put into the stores meanwhile.
      stored = sum(1 for results in list(stores.values())
                   for _, entry in list(results.items())
                   if (entry.get("provenance") or {}).get("recorded", "")
                   >= started)
      entry = {
          "command": options.command or "", "parts": list(parts),
          "quick": options.quick, "filtered": filtered,
          "whole_bench": set(parts) == set(PARTS) and not options.quick
                         and not filtered,
          "started": started,
          "wall_seconds": round(time.monotonic() - clock, 1),
          "outcome": outcome, "results_stored": stored,
          "load": monitor.summary(),
          **provenance.git_state(), "machine": provenance.machine()}
      if error:
        entry["error"] = error[:500]
      invocations.record(results_root(options), entry)
      done.append(outcome)  # only once written: a failed record may retry
    finally:
      writing.clear()
      if pending:
        end_by(pending[0])

  def end_by(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # ends the process, as without this hook

  def on_sigterm(signum, unused_frame):
    if writing:  # the record under way ends the process once written
      pending.append(signum)
      return
    try:
      record("interrupted", "SIGTERM")
    except BaseException:  # pylint: disable=broad-except
      traceback.print_exc()  # unrecorded, but the signal still ends it
    finally:
      end_by(signum)

  hooked = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
  if hooked:
    signal.signal(signal.SIGTERM, on_sigterm)
  try:
    with monitor:
      yield
  except (KeyboardInterrupt, SystemExit) as e:
    record("interrupted", type(e).__name__)
    raise
  except BaseException as e:
    record("failed", "%s: %s" % (type(e).__name__, e))
    raise
  else:
    record("completed")
  finally:
    if hooked:
      signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _headline_launcher(options: Options, log: Callable[[str], None]
                       ) -> claims_runs.Launcher:
  """The headline runs' launcher, once their corpus is built (and checked)."""
  wiki_large.ensure_built()
  return claims_runs.Launcher(os.path.abspath(options.work_dir), log,
                              guarded=not options.unguarded,
                              perplexity_eval_steps=headline.EVAL_STEPS)


def _run_parts(options: Options, parts: Sequence[str],
               log: Callable[[str], None],
               stores: Dict[str, store_lib.ResultStore]) -> List[str]:
  """Runs the parts; `stores` receives each result store as it is opened
  (the invocation's record counts what they hold, however it ends)."""
  dirs = _dirs(options)
  meta = dict(provenance.machine(), date=time.strftime("%Y-%m-%d"))
  def store(name, folder, key=None):
    stores[key or name] = store_lib.ResultStore(
        os.path.join(folder, name + ".json"),
        command=None if options.report_only else options.command, meta=meta)
    return stores[key or name]

  protocol = QUICK_PROTOCOL if options.quick else FULL_PROTOCOL

  def measure(results: store_lib.ResultStore, key: str,
              produce: Callable[[], Dict], gin_names: Sequence[str],
              code_parts: Sequence[str]) -> None:
    """Stores produce()'s result with its provenance, unless fresh in store."""
    if options.report_only or (results.done(key) and provenance.ensure_fresh(
        key, results.get(key), options.rerun_stale, log)):
      return
    log("%s" % key)
    # Recorded first: the code this process measures with, even if the
    # checkout changes during the measurement.
    record = provenance.record(options.command or "", gin_names, code_parts)
    result = produce()
    result["provenance"] = record
    results.put(key, result)

  if "speed" in parts:
    layers = store("layers", dirs["speed"])
    if not options.report_only:
      blocks = [b for b in speed.suite(options.quick)
                if not options.block_filter or any(
                    fnmatch.fnmatch(b.name, p) for p in options.block_filter)]
      speed.run_suite(blocks, layers, protocol, options.threads, log,
                      options.command or "", options.rerun_stale)
  if "models" in parts:
    models = store("models", dirs["speed"])
    model_protocol = QUICK_MODEL_PROTOCOL if options.quick else MODEL_PROTOCOL
    for key, specs in model_spec_groups(options.quick).items():
      measure(models, key,
              functools.partial(scaling.time_models, specs, model_protocol,
                                options.threads, log),
              _gin_names(specs.values()), MODEL_CODE)
  if "paper" in parts:
    paper = store("paper", dirs["speed"])
    for label, model_gin, layout_gin in PAPER_MODELS:
      measure(paper, label,
              functools.partial(scaling.paper_model, label,
                                [model_gin, layout_gin],
                                gin_params=PAPER_BATCH),
              [model_gin, layout_gin], MODEL_CODE)
  if "profile" in parts:
    prof = store("profile", dirs["speed"])
    for kind, num_experts in PROFILES:
      measure(prof, "%s/E%d/cf1.0/G1024/N4096" % (kind, num_experts),
              functools.partial(_profile, kind, num_experts, options.threads,
                                log),
              [], PROFILE_CODE)
  if "cluster" in parts:
    clusters = store("cluster", dirs["speed"])
    for name in cluster_bench.LAYOUTS:
      measure(clusters, "cluster/" + name,
              functools.partial(cluster_bench.measure, name, MODEL_PROTOCOL,
                                options.threads, log),
              [cluster_bench.layout_gin(name), *cluster_bench.spec_for(
                  name).gin_files], CLUSTER_CODE)
  written = []
  if any(p in parts for p in SPEED_PARTS):
    # The summary shows every stored speed result, not only this call's.
    speed_stores = dict(stores)
    for name in SPEED_STORES:
      path = os.path.join(dirs["speed"], name + ".json")
      if name not in speed_stores and os.path.exists(path):
        speed_stores[name] = store_lib.ResultStore(path)
    written.append(speed_report.write(speed_stores, dirs["speed"]))
  if "claims" in parts:
    budget = claims_plan.QUICK if options.quick else claims_plan.FULL
    plan = claims_plan.claims(budget)
    runs_store = store("runs", dirs["claims"])
    if not options.report_only:
      launcher = claims_runs.Launcher(os.path.abspath(options.work_dir), log,
                                      guarded=not options.unguarded)
      planned = claims_plan.ordered_runs(plan)
      runs = [r for r in planned if not options.run_filter or any(
          fnmatch.fnmatch(r.name, p) for p in options.run_filter)]
      claims_execute.run_all(runs, runs_store, launcher, log,
                             options.keep_checkpoints, planned,
                             jobs=options.jobs, command=options.command or "",
                             rerun_stale=options.rerun_stale)
    written.append(claims_report.write(
        plan, runs_store, dirs["claims"],
        baselines=claims_plan.ablation_baselines(budget)))
  if "headline" in parts and not options.quick:
    headline_store = store("runs", dirs["headline"], key="headline")
    if not options.report_only:
      launcher = _headline_launcher(options, log)
      planned = [r for group in headline.plan().values() for r in group]
      runs = [r for r in planned if not options.run_filter or any(
          fnmatch.fnmatch(r.name, p) for p in options.run_filter)]
      claims_execute.run_all(runs, headline_store, launcher, log,
                             options.keep_checkpoints, planned,
                             jobs=options.jobs, command=options.command or "",
                             rerun_stale=options.rerun_stale,
                             code_parts=headline.CODE,
                             keep=headline_distill.candidate_teachers())
  if "headline_distill" in parts and not options.quick:
    # The grid's store: the students' teachers must be done in it.
    headline_store = stores.get("headline") or store(
        "runs", dirs["headline"], key="headline")
    decision = headline_distill.decide(dict(headline_store.items()))
    if not options.report_only and decision["teacher"] is None:
      log("headline_distill: no students: %s" % decision["reason"])
    elif not options.report_only:
      launcher = _headline_launcher(options, log)
      students = headline_distill.students(decision["teacher"])
      runs = [r for r in students if not options.run_filter or any(
          fnmatch.fnmatch(r.name, p) for p in options.run_filter)]
      claims_execute.run_all(
          runs, headline_store, launcher, log, options.keep_checkpoints,
          [r for group in headline.plan().values() for r in group] + students,
          jobs=options.jobs, command=options.command or "",
          rerun_stale=options.rerun_stale, code_parts=headline.CODE)
  if "headline" in stores:  # one report for the grid and the students
    written.append(headline_report.write(stores["headline"],
                                         dirs["headline"], dirs["speed"]))
  return written
