"""Reading a claim run's training and evaluation from CLI logs.

No timings: bookkeeping checked against hand-computed values.
"""

from switch_mtf.bench.claims import runs as claims_runs


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


def test_runs_are_guarded_and_seeded_unless_asked_not_to(tmp_path):
  run = claims_runs.Run(name="r_s2", model_gin="models/t5_tiny.gin", seed=2)
  guarded = claims_runs.Launcher(str(tmp_path)).train_command(run)
  # After the model and recipe gin files, as runs/reliable.gin asks; the
  # data seed binding seeds the guarded run too (reliable.resolve_seed).
  assert guarded.index("--gin_file=runs/reliable.gin") == guarded.index(
      "--gin_file=bench/pretrain_recipe.gin") + 1
  assert "--gin_param=mesh_train_dataset_fn.seed = 1002" in guarded
  unguarded = claims_runs.Launcher(str(tmp_path),
                                   guarded=False).train_command(run)
  assert [f for f in guarded if f != "--gin_file=runs/reliable.gin"] == (
      unguarded)
