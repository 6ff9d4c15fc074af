"""The benchmark harness logic: grids, resumable stores, ratios, parsing.

No timings: these check the bookkeeping that turns runs into the numbers
docs/results.md quotes, against hand-computed values.
"""

import json
import math
import time

import pytest

from switch_mtf.bench import claims_analysis
from switch_mtf.bench import claims_execute
from switch_mtf.bench import claims_plan
from switch_mtf.bench import claims_runs
from switch_mtf.bench import grid
from switch_mtf.bench import layer_graph
from switch_mtf.bench import model_step
from switch_mtf.bench import speed
from switch_mtf.bench import speed_report
from switch_mtf.bench import stats
from switch_mtf.bench import store as store_lib


def test_expand_is_the_cross_product_in_axis_order():
  configs = grid.expand({"d": 256}, {"e": [8, 32], "cf": [1.0, 1.25]})
  assert configs == [
      {"d": 256, "e": 8, "cf": 1.0}, {"d": 256, "e": 8, "cf": 1.25},
      {"d": 256, "e": 32, "cf": 1.0}, {"d": 256, "e": 32, "cf": 1.25}]


@pytest.mark.parametrize("base,axes", [({}, {"e": []}),
                                       ({"e": 8}, {"e": [16]})])
def test_expand_rejects_empty_or_ambiguous_axes(base, axes):
  with pytest.raises(ValueError, match="axis 'e'"):
    grid.expand(base, axes)


def test_config_key_ignores_order_and_unique_drops_repeats():
  a = {"cf": 1.0, "e": 8}
  b = {"e": 8, "cf": 1.0}
  assert grid.config_key(a) == grid.config_key(b) == "cf=1.0,e=8"
  assert grid.config_key({"cf": 1.25}) != grid.config_key({"cf": 1.0})
  assert grid.unique([a, b, {"e": 16}]) == [a, {"e": 16}]


def test_store_persists_skips_done_and_keeps_commands(tmp_path):
  path = str(tmp_path / "r" / "layers.json")
  first = store_lib.ResultStore(path, command="python tools/bench.py")
  first.put("a", {"ms": 1.5})
  assert first.pending(["a", "b"]) == ["b"]
  # A resumed run: same file, new command; finished entries survive.
  second = store_lib.ResultStore(path, command="python tools/bench.py -q")
  assert second.done("a") and second.get("a") == {"ms": 1.5}
  assert second.pending(["a", "b"]) == ["b"]
  second.put("b", {"ms": 2.0})
  on_disk = json.load(open(path))
  assert [c["command"] for c in on_disk["commands"]] == [
      "python tools/bench.py", "python tools/bench.py -q"]
  assert sorted(on_disk["entries"]) == ["a", "b"]


def test_store_refuses_a_foreign_json(tmp_path):
  path = tmp_path / "other.json"
  path.write_text('{"x": 1}')
  with pytest.raises(ValueError, match="not a result file"):
    store_lib.ResultStore(str(path))


def test_stats_against_hand_values():
  assert stats.median([3, 1, 2]) == 2
  assert stats.median([4, 1, 3, 2]) == 2.5
  s = stats.spread([1.0, 2.0, 3.0])
  assert s["mean"] == 2.0 and math.isclose(s["std"], 1.0)
  fit = stats.linear_fit([1, 2, 3], [5, 7, 9])
  assert math.isclose(fit["slope"], 2) and math.isclose(fit["intercept"], 3)
  assert math.isclose(fit["r2"], 1.0)
  assert math.isclose(stats.log_log_slope([1, 2, 4], [3, 12, 48]), 2.0)
  assert stats.moving_mean([(1, 1.0), (2, 3.0), (3, 5.0)], 2) == [
      (2, 2.0), (3, 4.0)]


def test_first_step_interpolates_and_reports_never():
  curve = [(100, 5.0), (200, 4.0), (300, 3.0)]
  assert stats.first_step_at_or_below(curve, 3.5) == 250.0
  assert stats.first_step_at_or_below(curve, 5.0) == 100.0
  assert stats.first_step_at_or_below(curve, 2.9) is None


def _block_result():
  def contender(kind, ms, **spec):
    s = layer_graph.LayerSpec(kind=kind, **spec)
    return {"spec": s.as_dict(), "median_ms": ms,
            "useful_train_flops": 2e9, "executed_train_flops": 4e9}
  contenders = {
      "dense": contender("dense", 10.0),
      "einsum": contender("switch_einsum", 30.0),
      "gather": contender("switch_gather", 12.0),
      "moe1d": contender("moe1d_switch", 24.0),
      "moe1d_other_cf": contender("moe1d_switch", 99.0, capacity_factor=2.0),
  }
  return {"contenders": contenders, "probe_gflops": 400.0}


def test_derived_ratios_pair_each_layer_with_its_own_baselines():
  rows = speed.derived(_block_result())
  assert rows["dense"]["x_dense"] == 1.0
  assert rows["gather"]["x_dense"] == 1.2
  assert rows["einsum"]["x_moe1d_switch"] == 1.25  # not the cf-2.0 MoE1D
  assert rows["gather"]["x_moe1d_switch"] == 0.5
  # 2e9 useful FLOPs in 12 ms = 166.7 GFLOP/s = 41.7% of a 400 GFLOP/s probe.
  assert math.isclose(rows["gather"]["useful_gflops"], 2e9 / 12e-3 / 1e9)
  assert math.isclose(rows["gather"]["useful_fraction_of_probe"],
                      2e9 / 12e-3 / 1e9 / 400)


def test_layer_spec_capacity_follows_mesh_tf():
  spec = layer_graph.LayerSpec(kind="switch_gather", num_experts=8,
                               capacity_factor=1.25, group_size=1024)
  assert spec.groups_and_capacity() == {"num_groups": 4, "group_size": 1024,
                                        "capacity": 160}
  with pytest.raises(ValueError, match="unknown layer kind"):
    layer_graph.LayerSpec(kind="top3")


def test_train_log_parsing_counts_steps_and_resumes():
  # The printed global step lags; steps are counted from the checkpoint.
  first = ("INFO:tensorflow:Saving checkpoints for 0 into /m/model.ckpt.\n"
           "step, tf_loss[9.5][1]\nstep, tf_loss[8.0][1]\n"
           "step, tf_loss[7.0][3]\n")
  # Resumed from the step-2 checkpoint: step 3 is redone, then step 4.
  second = ("INFO:tensorflow:Restoring parameters from /m/model.ckpt-2\n"
            "step, tf_loss[6.5][3]\nstep, tf_loss[6.0][3]\n")
  parsed = claims_runs.parse_train_logs([first, second])
  assert parsed["losses"] == {1: 9.5, 2: 8.0, 3: 6.5, 4: 6.0}
  assert not parsed["diverged"]
  assert claims_runs.parse_train_logs(
      [first + "step, tf_loss[nan][4]\n"])["diverged"]
  assert claims_runs.curve(parsed["losses"], 2, 2) == [(2, 8.75), (4, 6.25)]


def test_eval_log_parsing():
  log = ("INFO:tensorflow:Saving dict for global step 250: global_step = 250,"
         " loss = 4.5, neg_log_perplexity = -5.25\n"
         "INFO:tensorflow:eval/local_super_glue_rte/accuracy at step 300: "
         "55.200\n")
  assert claims_runs.parse_eval_log(log) == {
      250: {"global_step": 250.0, "loss": 4.5, "neg_log_perplexity": -5.25},
      300: {"eval/local_super_glue_rte/accuracy": 55.2}}


def _entry(val, train):
  return {"eval": {str(s): {"neg_log_perplexity": -v} for s, v in val},
          "train_curve_100": train, "final_train_loss": train[-1][1]}


def test_speedup_reached_and_never_reached():
  dense = _entry([(500, 5.0), (1000, 4.0)], [(500, 5.0), (1000, 4.0)])
  better = _entry([(500, 4.5), (1000, 3.8)], [(500, 4.6), (1000, 3.9)])
  worse = _entry([(500, 5.2), (1000, 4.5)], [(500, 5.3), (1000, 4.4)])
  got = claims_analysis.speedup(better, dense, claims_execute.val_curve)
  # 4.5 at 500 -> 3.8 at 1000 crosses 4.0 at 500 + 500 * 0.5/0.7.
  assert math.isclose(got["step_reached"], 500 + 500 * 0.5 / 0.7, abs_tol=0.1)
  assert math.isclose(got["factor"], 1000 / (500 + 500 * 0.5 / 0.7),
                      rel_tol=1e-3)
  got = claims_analysis.speedup(worse, dense, claims_execute.val_curve)
  # never reaches 4.0; dense reaches Switch's final 4.5 at step 750.
  assert got["step_reached"] is None and got["factor"] == 0.75


def test_plan_names_are_unique_and_ordered():
  full = claims_plan.claims(claims_plan.FULL)
  runs = claims_plan.ordered_runs(full)
  names = [r.name for r in runs]
  assert len(names) == len(set(names))
  assert len(full["sample_efficiency"]) == 15  # 5 models x 3 seeds
  assert names[:15] == [r.name for r in sorted(
      full["sample_efficiency"], key=lambda r: r.seed)]
  by_name = {r.name: r for r in runs}
  for i, run in enumerate(runs):  # fine-tuning after its pretraining run
    if run.init_from:
      assert run.init_from in names[:i]
      assert by_name[run.init_from].train_steps == claims_plan.FULL.steps
  for claim in claims_plan.ABLATION_CLAIMS:
    for run in full[claim]:  # shorter ablations never reuse 1500-step runs
      assert run.train_steps == claims_plan.FULL.ablation_steps
      assert run.name.endswith("_%dsteps_s%d" % (run.train_steps, run.seed))
  quick = [r.name for r in claims_plan.ordered_runs(
      claims_plan.claims(claims_plan.QUICK))]
  assert all(n.startswith("quick_") for n in quick) and len(quick) == 5


class _FakeLauncher(claims_runs.Launcher):
  """Writes a synthetic CLI log instead of running the CLI."""

  def __init__(self, work_dir, seconds=0.0):
    super().__init__(work_dir, log=lambda message: None)
    self.commands = []
    self.seconds = seconds  # how long each fake process "runs"

  def execute(self, command, log_path):
    self.commands.append(command)
    time.sleep(self.seconds)
    with open(log_path, "w") as f:
      if "--gin_file=perplexity_eval.gin" in command:
        f.write("INFO:tensorflow:Saving dict for global step 4: "
                "neg_log_perplexity = -5.5\n")
      else:
        f.write("INFO:tensorflow:Saving checkpoints for 0 into m.\n")
        f.write("".join("step, tf_loss[%g][%d]\n" % (9 - i, i)
                        for i in range(1, 5)))
    return 0, 0.1


def test_run_all_skips_finished_runs_and_reruns_stale_ones(tmp_path):
  runs = [claims_runs.Run(name="a_s0", model_gin="models/t5_tiny.gin",
                          gin_params=("num_experts = 8",), train_steps=4),
          claims_runs.Run(name="b_s0", model_gin="models/t5_tiny.gin",
                          train_steps=4)]
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  done = {"run": runs[0].as_dict(), "final_train_loss": 1.0}
  store.put("a_s0", done)
  store = store_lib.ResultStore(store.path)  # as reloaded by a later call
  # b's stored entry is stale: it ran with another step count.
  store.put("b_s0", {"run": dict(runs[1].as_dict(), train_steps=9)})
  launcher = _FakeLauncher(str(tmp_path / "work"))
  claims_execute.run_all(runs, store, launcher, log=lambda message: None,
                         keep_checkpoints=False)
  # Only b trained and evaluated; a's entry is untouched.
  assert [c[1] for c in launcher.commands] == [
      "--model_dir=" + launcher.model_dir(runs[1])] * 2
  assert store.get("a_s0")["final_train_loss"] == 1.0
  entry = store.get("b_s0")
  assert entry["steps_logged"] == 4 and not entry["diverged"]
  assert entry["final_eval"] == {"neg_log_perplexity": -5.5, "step": 4}
  assert "--gin_param=utils.run.train_steps = 4" in entry["train_command"]
  # Its scratch model directory is gone (no later run starts from it).
  assert not (tmp_path / "work" / "b_s0").exists()


def test_speedup_without_aux_floor_subtracts_coef_per_moe_layer():
  dense = _entry([(1000, 4.0)], [(500, 4.5), (1000, 4.0)])
  switch = dict(_entry([(1000, 4.0)], [(500, 4.51), (1000, 4.02)]),
                moe_layers=2)
  # Raw: Switch never reaches 4.0; minus the 0.02 floor it reaches it at
  # 4.49 -> 4.00, i.e. step 500 + 500 * 0.49 / 0.49 = 1000.
  assert claims_analysis.speedup(switch, dense,
                                 claims_analysis._train_curve)[
                                     "step_reached"] is None
  got = claims_analysis._speedup_without_aux(switch, dense)
  assert math.isclose(got["step_reached"], 1000.0)
  assert math.isclose(got["factor"], 1.0)


def test_run_all_two_jobs_stores_every_run_and_fine_tunes_after_pretraining(
    tmp_path):
  pretrain = claims_runs.Run(name="p_s0", model_gin="models/t5_tiny.gin",
                             train_steps=4)
  finetune = claims_runs.Run(name="f_s0", model_gin="models/t5_tiny.gin",
                             train_steps=4, init_from="p_s0",
                             eval_kind="none")
  other = claims_runs.Run(name="o_s0", model_gin="models/t5_tiny.gin",
                          train_steps=4, eval_kind="none")
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  launcher = _FakeLauncher(str(tmp_path / "work"), seconds=0.2)
  claims_execute.run_all([pretrain, finetune, other], store, launcher,
                         log=lambda message: None, keep_checkpoints=False,
                         jobs=2)
  assert all(store.done(r.name) for r in (pretrain, finetune, other))
  reloaded = store_lib.ResultStore(store.path)
  assert sorted(name for name, _ in reloaded.items()) == [
      "f_s0", "o_s0", "p_s0"]
  dirs = [next(c for c in command if c.startswith("--model_dir="))
          for command in launcher.commands]
  finetune_dir = "--model_dir=" + launcher.model_dir(finetune)
  pretrain_dir = "--model_dir=" + launcher.model_dir(pretrain)
  # Both of the pretraining run's processes (train, eval) came first.
  assert dirs.index(finetune_dir) > max(
      i for i, d in enumerate(dirs) if d == pretrain_dir)
  assert "init_checkpoint" in store.get("f_s0")["train_command"]


def test_precision_models_report_their_dtype_and_ratio_to_dense(tmp_path):
  specs = model_step.precision_specs()
  assert [s.activation_dtype for s in specs.values()] == [
      "float32", "bfloat16", "float32", "bfloat16", "bfloat16"]
  assert ("Switch.router_dtype = 'bfloat16'" in
          specs["switch_tiny_E8_gather_bfloat16_router_bfloat16"].gin_params)
  assert not any("router_dtype" in p
                 for p in specs["switch_tiny_E8_gather_bfloat16"].gin_params)
  store = store_lib.ResultStore(str(tmp_path / "models.json"))
  store.put("tiny/precision", {"models": {
      name: {"median_ms": ms, "params": 2e6, "expert_params": 0,
             "spec": spec.as_dict()}
      for (name, spec), ms in zip(specs.items(), (400, 200, 500, 300, 250))}})
  rows = [line for line in speed_report.model_section(store, str(tmp_path))
          if line.startswith("| switch_tiny_E8_gather_bfloat16 |")]
  assert rows == ["| switch_tiny_E8_gather_bfloat16 | bfloat16 | 2.00M | "
                  "0.00M | 300.0 | 0.75 |"]
  # One expert count: no experts-doubling plot from the precision models.
  assert not (tmp_path / "experts_doubling.png").exists()
