"""The headline experiment's plan: paired runs, its eval, its code hash."""

import os

import pytest

from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import provenance


def _flag(command, prefix):
  values = [c[len(prefix):].lstrip(" =") for c in command
            if c.startswith(prefix)]
  assert len(values) == 1, (prefix, command)
  return values[0]


def test_plan_is_seed_major_and_pairs_models_by_data_order(tmp_path):
  launcher = claims_runs.Launcher(str(tmp_path),
                                  perplexity_eval_steps=headline.EVAL_STEPS)
  (runs,) = headline.plan().values()
  names = [r.name for r in runs]
  assert len(set(names)) == len(names) == 4 * len(headline.SEEDS)
  assert [r.seed for r in runs] == sorted(r.seed for r in runs)
  for seed in headline.SEEDS:
    group = [r for r in runs if r.seed == seed]
    assert [r.model_gin for r in group] == ["models/t5_tiny.gin"] + [
        "models/switch_tiny.gin"] * 3
    assert [p for r in group[1:] for p in r.gin_params
            if p.startswith("num_experts")] == [
                "num_experts = %d" % e for e in (8, 32, 128)]
    commands = [launcher.train_command(r) for r in group]
    assert {_flag(c, "--gin_param=mesh_train_dataset_fn.seed")
            for c in commands} == {str(1000 + seed)}
    for command in commands:
      assert _flag(command, "--gin_param=MIXTURE_NAME") == (
          "'wiki_large_span_corruption'")
      assert _flag(command, "--gin_param=utils.run.train_steps") == str(
          headline.PROTOCOL.steps)
    evaluation = launcher.eval_command(group[0])
    assert _flag(evaluation, "--gin_param=utils.run.perplexity_eval_steps"
                 ) == str(headline.EVAL_STEPS)
  # The recipe resolves, with its include, and seeds the validation set.
  records = provenance.gin_files([headline.RECIPE_GIN])
  assert set(records) == {headline.RECIPE_GIN, "bench/pretrain_recipe.gin"}
  assert "mesh_eval_dataset_fn.seed = 1234" in records[
      headline.RECIPE_GIN]["text"]


def test_code_hash_ignores_other_tasks_but_not_this_one(tmp_path):
  tasks = tmp_path / "tasks"
  os.makedirs(tasks)
  for name in ("wiki_large", "wiki", "registry"):
    (tasks / ("%s.py" % name)).write_text("# %s\n" % name)
  before = provenance.code_hash(headline.CODE, str(tmp_path))
  (tasks / "own_corpus.py").write_text("# a new task elsewhere\n")
  assert provenance.code_hash(headline.CODE, str(tmp_path)) == before
  (tasks / "wiki_large.py").write_text("# wiki_large, changed\n")
  assert provenance.code_hash(headline.CODE, str(tmp_path)) != before


def _entry(run, curve):
  return {"run": run.as_dict(), "eval": {
      str(step): {"neg_log_perplexity": -ce} for step, ce in curve}}


def test_report_gives_the_step_speedup_and_the_paired_difference(tmp_path):
  from switch_mtf.bench.claims import headline_report  # pylint: disable=g-import-not-at-top
  from switch_mtf.bench.common import store as store_lib  # pylint: disable=g-import-not-at-top
  dense = headline.dense(headline.PROTOCOL, 0)
  switch = headline.switch(headline.PROTOCOL, 0, 32)
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  # Dense ends at 5.0 after 4000 steps; Switch is at 5.0 halfway between
  # its checkpoints at 1500 (5.2) and 2500 (4.8): step 2000, 2.00x.
  store.put(dense.name, dict(_entry(dense, [(500, 6.0), (2500, 5.4),
                                            (4000, 5.0)]),
                             train_seconds=3600.0, eval_seconds=60.0))
  store.put(switch.name, _entry(switch, [(500, 5.8), (1500, 5.2),
                                         (2500, 4.8), (4000, 4.6)]))
  speed = tmp_path / "speed"
  store_lib.ResultStore(str(speed / "models.json")).put(headline.speed_key(), {
      "models": {"t5_tiny": {"median_ms": 400.0},
                 "switch_tiny_E32_gather": {"median_ms": 440.0}}})
  path = headline_report.write(store, str(tmp_path), str(speed))
  with open(path) as f:
    summary = f.read()
  assert ("| model | seeds | final val CE: mean [95%% CI] | − dense, paired "
          "by seed: mean [95%% CI] | steps to dense's final val CE: speed-up "
          "[95%% CI] | whole-step time, ms (`%s`) |" % headline.speed_key()
          ) in summary
  assert ("| Switch E32 | 1 | 4.600 (1 seed, no interval) | -0.400 (1 seed, "
          "no interval) | 2.00× (1 seed) | 440 |") in summary
  assert ("| dense (t5_tiny) | 1 | 5.000 (1 seed, no interval) | – | – | "
          "400 |") in summary
  for name in ("val_ce.png", "val_ce_wallclock.png", "val_ce_vs_experts.png"):
    assert os.path.exists(tmp_path / name)
    assert "](%s)" % name in summary
  # One seed of three: no part of the target can be judged.
  assert "- Speed-up: " in summary and "**not enough runs**" in summary
  # The stored run's own time, with the load it ran under.
  assert "| dense (t5_tiny) | 1 | 1:00:00 (1:00:00–1:00:00) | 1:00 | – |" in (
      summary)
  assert headline_report.step_times(str(speed)) == (headline.speed_key(), {
      "t5_tiny": 400.0, "switch_tiny_E32_gather": 440.0})


def test_report_lists_the_pilots_with_their_curves(tmp_path):
  from switch_mtf.bench.claims import headline_report  # pylint: disable=g-import-not-at-top
  from switch_mtf.bench.common import store as store_lib  # pylint: disable=g-import-not-at-top
  pilot = headline.dense(headline.PROTOCOL, 0)
  pilots = store_lib.ResultStore(str(tmp_path / headline_report.PILOTS_FILE))
  pilots.put("pilot_dense", _entry(pilot, [(1000, 5.3), (2000, 5.0),
                                           (3000, 4.85)]))
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  with open(headline_report.write(store, str(tmp_path),
                                  str(tmp_path / "speed"))) as f:
    summary = f.read()
  assert ("| pilot_dense | %d | 1000: 5.300, 2000: 5.000, 3000: 4.850 | "
          "0.150 (last 1000 steps) | ? (–) |" % headline.PROTOCOL.checkpoint_every
          ) in summary
  assert "No headline run is stored yet" in summary
  assert "**pending**; both seed-0 runs must reach step %d first." % (
      headline.PROTOCOL.steps) in summary
  # No idle step times of the protocol's models: says how to measure them.
  assert ("not measured yet: `python tools/bench.py --parts=models` stores "
          "entry `%s`" % headline.speed_key()) in summary


def test_the_timed_models_are_the_runs_models():
  """The wall-clock axis times each run's own gin file and bindings."""
  specs = headline.speed_specs()
  (runs,) = headline.plan().values()
  timed = {(spec.gin_files, spec.gin_params) for spec in specs.values()}
  assert timed == {((r.model_gin,), r.gin_params) for r in runs}
  assert sorted(specs) == sorted(
      headline.PROTOCOL.speed_name(e) for e in (None,) + headline.EXPERTS)
  assert headline.speed_key() == "tiny/E8,32,128"


def _protocol_curve(protocol, final, drop):
  """A curve of the protocol's checkpoints ending at `final` that fell
  `drop` over its level-off window."""
  steps = range(protocol.checkpoint_every, protocol.steps + 1,
                protocol.checkpoint_every)
  window = protocol.level_off_steps
  start = protocol.steps - window
  return [(s, final + drop * max(0, protocol.steps - s) / window
           + (0.5 if s < start else 0.0)) for s in steps]


def test_pilot_rule_keeps_or_rejects_and_says_why():
  mini = headline.MINI
  dense = _protocol_curve(mini, 4.5, 0.04)
  assert headline.drop_over_last(dense, 2000) == pytest.approx(0.04)
  kept = headline.pilot_rule(mini, dense, _protocol_curve(mini, 4.4, 0.1))
  assert kept["status"] == "kept" and not kept["failed"]
  still_falling = headline.pilot_rule(mini, _protocol_curve(mini, 4.5, 0.06),
                                      _protocol_curve(mini, 4.4, 0.1))
  assert still_falling["status"] == "rejected"
  assert still_falling["failed"] == [
      "dense fell by 0.060 over its last 2000 steps (limit < 0.05)"]
  behind = headline.pilot_rule(mini, dense, _protocol_curve(mini, 4.5, 0.1))
  assert behind["failed"] == [
      "Switch E%d ends at 4.500, not below dense's 4.500"
      % headline.PILOT_EXPERTS]
  # A run that has not reached the last step decides nothing.
  assert headline.pilot_rule(mini, dense, _protocol_curve(mini, 4.4, 0.1)[
      :-1])["status"] == "pending"


def test_the_protocols_rule_does_not_require_levelling_off():
  """TINY's rule (written before its runs) is Switch E32 below dense only;
  the dense drop is still measured and reported."""
  tiny = headline.TINY
  falling = _protocol_curve(tiny, 4.6, 0.12)
  kept = headline.pilot_rule(tiny, falling, _protocol_curve(tiny, 4.5, 0.1))
  assert kept["status"] == "kept" and kept["drop"] == pytest.approx(0.12)
  behind = headline.pilot_rule(tiny, falling,
                               _protocol_curve(tiny, 4.7, 0.1))
  assert behind["failed"] == [
      "Switch E32 ends at 4.700, not below dense's 4.600"]
  assert headline.PROTOCOL is headline.CANDIDATES[-1] is tiny


def test_report_gives_every_candidates_verdict_from_runs_and_pilots(
    tmp_path):
  """Rejected candidates' pilots are in pilots.json, the protocol's in
  runs.json; the summary judges each by its own rule."""
  from switch_mtf.bench.claims import headline_report  # pylint: disable=g-import-not-at-top
  from switch_mtf.bench.common import store as store_lib  # pylint: disable=g-import-not-at-top
  mini = headline.MINI
  pilots = store_lib.ResultStore(str(tmp_path / headline_report.PILOTS_FILE))
  pilots.put(headline.dense(mini, 0).name,
             _entry(headline.dense(mini, 0), _protocol_curve(mini, 4.6, 0.1)))
  pilots.put(headline.switch(mini, 0, 32).name,
             _entry(headline.switch(mini, 0, 32),
                    _protocol_curve(mini, 4.7, 0.1)))
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  tiny = headline.PROTOCOL
  for run, final in ((headline.dense(tiny, 0), 4.6),
                     (headline.switch(tiny, 0, 32), 4.5)):
    store.put(run.name, _entry(run, _protocol_curve(tiny, final, 0.12)))
  with open(headline_report.write(store, str(tmp_path),
                                  str(tmp_path / "speed"))) as f:
    summary = f.read()
  assert ("- t5_mini / switch_mini, 6000 steps: kept if the seed-0 dense run "
          "falls by less than 0.05 in validation CE over its last 2000 steps "
          "and the seed-0 Switch E32 run ends below the seed-0 dense run: "
          "**rejected**. Dense fell by 0.100 over its last 2000 steps and "
          "ends at 4.600; Switch E32 ends at 4.700. Failed: dense fell by "
          "0.100 over its last 2000 steps (limit < 0.05); Switch E32 ends at "
          "4.700, not below dense's 4.600.") in summary
  assert ("- t5_tiny / switch_tiny, 3000 steps (the protocol; the grid runs "
          "whatever the verdict): kept if the seed-0 Switch E32 run ends "
          "below the seed-0 dense run: **kept**. Dense fell by 0.120 over its "
          "last 1000 steps and ends at 4.600; Switch E32 ends at 4.500."
          ) in summary
  # The pilots table gives each candidate's drop over its own window.
  assert "| 0.100 (last 2000 steps) |" in summary
