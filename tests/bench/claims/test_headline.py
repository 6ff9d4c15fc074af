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
