"""Running the claims resumably: skips, stale reruns, parallel jobs.

No timings: bookkeeping checked against hand-computed values.
"""

import time

from switch_mtf.bench.claims import execute as claims_execute
from switch_mtf.bench.claims import runs as claims_runs
from switch_mtf.bench.common import store as store_lib


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


def test_provenance_is_the_code_at_the_start_of_training(tmp_path,
                                                         monkeypatch):
  # The code may change while a run trains for hours; the entry must
  # describe what the CLI process loaded, so that it is then stale.
  from switch_mtf.bench.common import provenance  # pylint: disable=g-import-not-at-top
  launcher = _FakeLauncher(str(tmp_path))
  monkeypatch.setattr(provenance, "code_hash", lambda parts: (
      "hash after training" if launcher.commands else "hash at start"))
  run = claims_runs.Run(name="a_s0", model_gin="models/t5_tiny.gin",
                        train_steps=4)
  entry = claims_execute.execute(run, launcher)
  assert entry["provenance"]["code_sha256"] == "hash at start"
