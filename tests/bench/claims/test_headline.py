"""The headline experiment's plan: paired runs, its eval, its code hash."""

import os

from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import provenance


def _flag(command, prefix):
  values = [c[len(prefix):].lstrip(" =") for c in command
            if c.startswith(prefix)]
  assert len(values) == 1, (prefix, command)
  return values[0]


def test_pilots_pair_dense_and_switch_by_data_order(tmp_path):
  launcher = claims_runs.Launcher(str(tmp_path),
                                  perplexity_eval_steps=headline.EVAL_STEPS)
  pilots = headline.pilots()
  names = [r.name for r in pilots]
  assert len(set(names)) == len(names) == 4
  for recipe in headline.RECIPES:
    dense, switch = [r for r in pilots if "_%s_" % recipe in r.name]
    assert dense.model_gin == "models/t5_tiny.gin"
    assert "num_experts = 32" in switch.gin_params
    commands = [launcher.train_command(r) for r in (dense, switch)]
    seeds = {_flag(c, "--gin_param=mesh_train_dataset_fn.seed") for c in
             commands}
    assert len(seeds) == 1
    for command in commands:
      assert _flag(command, "--gin_param=MIXTURE_NAME") == (
          "'wiki_large_span_corruption'")
    evaluation = launcher.eval_command(dense)
    assert _flag(evaluation, "--gin_param=utils.run.perplexity_eval_steps"
                 ) == str(headline.EVAL_STEPS)
  # Both recipes resolve, with their includes, and seed the validation set.
  records = provenance.gin_files([headline.RSQRT_RECIPE_GIN])
  assert set(records) == {headline.RSQRT_RECIPE_GIN, headline.RECIPE_GIN,
                          "bench/pretrain_recipe.gin"}
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
  dense, switch = headline.pilots()[:2]
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  # Dense ends at 5.0 after 4000 steps; Switch is at 5.0 halfway between
  # its checkpoints at 1500 (5.2) and 2500 (4.8): step 2000, 2.00x.
  store.put(dense.name, _entry(dense, [(500, 6.0), (2500, 5.4),
                                       (4000, 5.0)]))
  store.put(switch.name, _entry(switch, [(500, 5.8), (1500, 5.2),
                                         (2500, 4.8), (4000, 4.6)]))
  speed = tmp_path / "speed"
  store_lib.ResultStore(str(speed / "models.json")).put("tiny/E32", {
      "models": {"t5_tiny": {"median_ms": 400.0},
                 "switch_tiny_E32": {"median_ms": 440.0}}})
  path = headline_report.write(store, str(tmp_path), str(speed))
  with open(path) as f:
    summary = f.read()
  assert ("| Switch E32 | 1 | 4.600 (1 seed) | -0.400 (1 seed, no interval) "
          "| 2.00× (1 seed) |") in summary
  assert "| dense (t5_tiny) | 1 | 5.000 (1 seed) | – | – |" in summary
  assert os.path.exists(tmp_path / "val_ce_0.png")
  assert "![%s](val_ce_wallclock_0.png)" % headline.describe(
      headline.CANDIDATES[0]) in summary
  assert headline_report.step_times(str(speed)) == {
      "t5_tiny": 400.0, "switch_tiny_E32": 440.0}
