"""Reading runs from event files, and the report written from them.

The event files are written here record by record, with chosen steps, values
and wall times, in the layout the CLI and the demo pipeline produce: CLI
summaries (`loss`, `global_step/sec`, the Switch layer's `switch/...` router
metrics) in the model dir, the per-step loss in `train_per_step/`, eval
results in `eval_*` / `validation_eval` subdirs. A resumed run is two event
files whose steps overlap.
"""

import os

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from switch_mtf.cli import events
from switch_mtf.cli import progress as cli_progress
from switch_mtf.workflows import report
from switch_mtf.workflows import run_data
from tests import repo_paths

ENCODER = "encoder/block_000/layer_003"
DECODER = "decoder/block_000/layer_005"


def write_events(directory, name, start_time, records):
  """An event file whose first event is at start_time; records are
  (wall_time, step, {tag: value})."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, "events.out.tfevents.%d.%s" % (
      int(start_time), name))
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(tf.compat.v1.Event(
        wall_time=start_time, file_version="brain.Event:2")
                 .SerializeToString())
    for wall_time, step, values in records:
      summary = tf.compat.v1.Summary(value=[
          tf.compat.v1.Summary.Value(tag=t, simple_value=v)
          for t, v in values.items()])
      writer.write(tf.compat.v1.Event(wall_time=wall_time, step=step,
                                      summary=summary).SerializeToString())
  return path


def sparse_loss(step):
  return 9.0 - step / 10.0


def dense_loss(step):
  return 9.0 - step / 12.5


def fractions(step, experts=4):
  """Expert shares that sum to 1 and drift with the step."""
  raw = np.arange(1, experts + 1, dtype=np.float64) + step / 50.0
  return raw / raw.sum()


@pytest.fixture(name="runs_dir", scope="module")
def fixture_runs_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("runs")
  sparse = root / "sparse"
  per_step = str(sparse / events.PER_STEP_DIR)
  # First process: steps 1-30 (checkpoint at 20), then killed; the resumed
  # process, started after 900 s of downtime, redoes 21-30 and goes to 50.
  write_events(per_step, "a", 1000.0,
               [(1010.0 + s, s, {"loss": sparse_loss(s) + 5.0 * (s > 20)})
                for s in range(1, 31)])
  write_events(per_step, "b", 2000.0,
               [(2020.0 + (s - 20), s, {"loss": sparse_loss(s)})
                for s in range(21, 51)])
  summaries = []
  for step in (1, 25, 50):
    values = {"loss": sparse_loss(step), "global_step/sec": 2.0 + step / 50}
    for layer, dropped in ((ENCODER, 0.1), (DECODER, 0.2)):
      for expert, share in enumerate(fractions(step)):
        values["switch/%s/expert_fraction/expert_%03d" % (layer, expert)] = (
            share)
      values["switch/%s/tokens_dropped_fraction" % layer] = dropped - (
          step / 1000.0)
      values["switch/%s/router_entropy" % layer] = 1.3
      values["switch/%s/top1_probability_mean" % layer] = 0.4
    summaries.append((1000.0 + step, step, values))
  write_events(str(sparse), "cli", 1000.0, summaries)
  write_events(str(sparse / "eval_wiki_validation_64"), "e", 3000.0,
               [(3001.0, 50, {"neg_log_perplexity": -4.5, "loss": 4.1})])
  dense = root / "dense"
  write_events(str(dense / events.PER_STEP_DIR), "a", 500.0,
               [(510.0 + s / 2.0, s, {"loss": dense_loss(s)})
                for s in range(1, 51)])
  write_events(str(dense), "cli", 500.0,
               [(510.0, 1, {"loss": dense_loss(1), "global_step/sec": 3.0}),
                (520.0, 50, {"loss": dense_loss(50),
                             "global_step/sec": 4.0})])
  write_events(str(dense / "eval_wiki_validation_64"), "e", 3000.0,
               [(3001.0, 50, {"neg_log_perplexity": -4.7})])
  return root


def test_resumed_run_keeps_the_redone_steps_and_counts_time_once(runs_dir):
  scalars, segments = events.read_scalars(
      str(runs_dir / "sparse" / events.PER_STEP_DIR))
  points = scalars["loss"]
  assert [p.step for p in points] == list(range(1, 51))
  assert [p.value for p in points] == pytest.approx(
      [sparse_loss(s) for s in range(1, 51)])
  assert [s.start_time for s in segments] == [1000.0, 2000.0]
  elapsed = [t for t, _ in events.wall_clock(points, segments)]
  # First process: 10 s start-up, then 1 s per step, kept up to step 20
  # (30 s). Second: its own 20 s start-up, 1 s per step after step 20.
  expected = [10.0 + s for s in range(1, 21)] + [
      30.0 + 20.0 + (s - 20) for s in range(21, 51)]
  assert elapsed == pytest.approx(expected)


def test_collect_reads_loss_router_evals(runs_dir):
  run = run_data.collect(str(runs_dir / "sparse"), "sparse")
  assert run.loss_source.startswith("every step")
  assert run.final_step == 50
  assert run.steps_per_second == pytest.approx(2.5)  # median of 2.02/2.5/3
  assert sorted(run.router) == [DECODER, ENCODER]
  layer = run.router[ENCODER]
  assert layer.num_experts == 4
  assert [v for _, v in layer.expert_fraction[3]] == pytest.approx(
      [fractions(s)[3] for s in (1, 25, 50)])
  assert layer.scalars["tokens_dropped_fraction"][-1] == (
      50, pytest.approx(0.05))
  assert run.evals["eval_wiki_validation_64/neg_log_perplexity"] == [
      (50, pytest.approx(-4.5))]
  assert run.parameters is None  # no checkpoint in a synthetic run


def test_collect_falls_back_to_cli_loss_summaries(tmp_path):
  write_events(str(tmp_path), "cli", 100.0,
               [(110.0, 1, {"loss": 8.0}), (150.0, 100, {"loss": 5.0})])
  run = run_data.collect(str(tmp_path))
  assert run.loss == [(1, 8.0), (100, 5.0)]
  assert run.loss_source == "CLI `loss` summaries"
  assert run.label == os.path.basename(str(tmp_path))


def test_collect_refuses_a_missing_dir(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    run_data.collect(str(tmp_path / "nope"))


def _png_size(path):
  with PIL.Image.open(path) as image:
    assert image.format == "PNG"
    return image.size


def test_report_numbers_and_plots(runs_dir, tmp_path):
  runs = [run_data.collect(str(runs_dir / "sparse"), "sparse"),
          run_data.collect(str(runs_dir / "dense"), "dense")]
  result = report.write_report(runs, str(tmp_path), "Test report",
                               compare=report.Comparison("sparse", "dense"))
  text = open(result.path).read()
  final_sparse = np.mean([sparse_loss(s) for s in range(46, 51)])
  final_dense = np.mean([dense_loss(s) for s in range(46, 51)])
  assert "| sparse | – | 50 | %.3f | 4.500 (50) | 2.50 |" % final_sparse in text
  assert "| dense | – | 50 | %.3f | 4.700 (50) | 3.50 |" % final_dense in text
  assert "sparse %.3f vs dense %.3f (%+.3f)" % (
      final_sparse, final_dense, final_sparse - final_dense) in text
  # Trailing 5-step mean of sparse first <= dense's final mean: independent
  # search over the known curve.
  smooth = [np.mean([sparse_loss(t) for t in range(max(1, s - 4), s + 1)])
            for s in range(1, 51)]
  first = next(s for s, v in zip(range(1, 51), smooth) if v <= final_dense)
  assert "at step %d of 50: %.2f× fewer steps" % (first, 50 / first) in text
  # Wall-clock: sparse's training time at that step (see the resume test's
  # formula) against dense's whole run (10 s start-up + 50 steps of 0.5 s).
  sparse_seconds = 10.0 + first if first <= 20 else 50.0 + (first - 20)
  assert sparse_seconds > 35.0
  assert ("got there after %s; dense took 0:35 for its whole run. dense was "
          "%.2f× faster" % (cli_progress.format_duration(sparse_seconds),
                            sparse_seconds / 35.0)) in text
  assert "sparse 4.500 vs dense 4.700 (-0.200)" in text
  busiest = fractions(50)[3] * 4
  idlest = fractions(50)[0] * 4
  assert "| %s | 4 | %.2f | %.2f | 0.050 | 1.300 | 0.400 |" % (
      ENCODER, busiest, idlest) in text
  assert "Warning" not in text
  assert set(result.plots) == {
      "loss_vs_steps.png", "loss_vs_wallclock.png",
      "expert_load_sparse.png", "tokens_dropped_fraction_sparse.png"}
  for name in result.plots:
    width, height = _png_size(os.path.join(str(tmp_path), name))
    assert width > 200 and height > 150
    assert "(%s)" % name in text


def test_report_warns_when_expert_fractions_do_not_sum_to_one(tmp_path):
  write_events(str(tmp_path / "run"), "cli", 1.0, [
      (2.0, 100, {"loss": 5.0,
                  "switch/%s/expert_fraction/expert_000" % ENCODER: 0.0,
                  "switch/%s/expert_fraction/expert_001" % ENCODER: 0.0})])
  runs = [run_data.collect(str(tmp_path / "run"), "broken")]
  text = open(report.write_report(runs, str(tmp_path / "out"), "t").path).read()
  assert "**Warning:** in %s the expert fractions do not sum to 1" % ENCODER in (
      text)


def test_router_report_tool_writes_report_for_given_dirs(runs_dir, tmp_path,
                                                         capsys):
  tool = repo_paths.load_tool("router_report")
  out_dir = str(tmp_path / "out")
  code = tool.main([str(runs_dir / "sparse"), str(runs_dir / "dense"),
                    "--labels=s,d", "--compare=s,d", "--output_dir=" + out_dir])
  assert code == 0
  assert "Report: %s/report.md" % out_dir in capsys.readouterr().out
  assert "### s vs d" in open(os.path.join(out_dir, "report.md")).read()
  assert tool.main([str(runs_dir / "sparse"), "--labels=a,b"]) == 2
  assert tool.main([str(tmp_path / "missing")]) == 2
