"""A claim run through the real CLI: train, evaluate, store, skip when done.

The fake launcher of test_execute.py checks the bookkeeping; this checks
that the commands the launcher builds really train and evaluate, and that
the stored entry holds the curves, evaluations and provenance the reports
read.
"""

import math

import pytest

from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import store as store_lib

TINY = ("utils.run.batch_size = ('sequences_per_batch', 8)",
        "utils.run.sequence_length = {'inputs': 64, 'targets': 16}",
        "Unitransformer.max_length = 64",
        "utils.run.iterations_per_loop = 10",
        "Switch.dispatch_mode = 'gather'")


@pytest.mark.slow
def test_a_tiny_claim_run_trains_evaluates_and_is_skipped_when_done(tmp_path):
  run = claims_runs.Run(name="tiny_switch_s0",
                        model_gin="models/switch_tiny.gin", gin_params=TINY,
                        train_steps=20, checkpoint_every=10)
  store = store_lib.ResultStore(str(tmp_path / "runs.json"))
  launcher = claims_runs.Launcher(str(tmp_path / "work"),
                                  log=lambda message: None)
  said = []
  claims_execute.run_all([run], store, launcher, log=said.append,
                         command="pytest")
  entry = store.get(run.name)
  assert entry is not None, said
  assert entry["train_exit_code"] == 0 and not entry["diverged"]
  assert entry["steps_logged"] == 20
  assert [s for s, _ in entry["train_curve_10"]] == [10, 20]
  assert sorted(entry["eval"]) == ["10", "20"]
  assert math.isfinite(entry["final_eval"]["neg_log_perplexity"])
  assert entry["moe_layers"] == 2 and entry["tokens_dropped_fraction"]
  record = entry["provenance"]
  assert record["command"] == "pytest" and record["commit"]
  assert "models/switch_tiny.gin" in record["gin_files"]
  assert "bench/pretrain_recipe.gin" in record["gin_files"]
  assert entry["load"]["samples"] >= 1
  said.clear()
  claims_execute.run_all([run], store, launcher, log=said.append,
                         command="pytest")
  assert said == ["claims: tiny_switch_s0 done, skipped"]
