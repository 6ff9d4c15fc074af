"""The headline sections from a fabricated results folder.

Three seeds of dense and Switch E8/E32/E128 with final validation CEs
chosen here: the README and docs sections must show the bench report's
table (intervals checked against scipy's t quantiles computed here), link
the plots the report wrote with the document's own path prefix, and name
the stale runs.
"""

import math
import os

from scipy import stats as scipy_stats

from switch_mtf.bench.claims import headline
from switch_mtf.bench.claims import headline_report
from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.documents import headline_text

FINALS = {0: [5.0, 5.1, 5.05], 8: [4.95, 5.0, 5.0], 32: [4.9, 4.95, 4.9],
          128: [4.8, 4.9, 4.85]}


def _results(tmp_path):
  folder = tmp_path / "results" / "headline"
  store = store_lib.ResultStore(str(folder / "runs.json"))
  for experts, finals in FINALS.items():
    for seed, final in enumerate(finals):
      run = (headline.dense(headline.PROTOCOL, seed) if not experts else
             headline.switch(headline.PROTOCOL, seed, experts))
      curve = {1000: final + 0.5, 2000: final + 0.2, 3000: final}
      store.put(run.name, {
          "run": run.as_dict(), "train_seconds": 1800.0,
          "eval_seconds": 60.0,
          "eval": {str(s): {"neg_log_perplexity": -v}
                   for s, v in curve.items()}})
  store_lib.ResultStore(str(folder / headline_report.PILOTS_FILE)).put(
      "pilot", {"run": headline.dense(headline.PROTOCOL, 0).as_dict(),
                "eval": {}})
  headline_report.write(store, str(folder), str(tmp_path / "results" /
                                                "speed"))
  return headline_text.HeadlineResults(str(tmp_path / "results"))


def test_sections_show_the_reports_table_and_link_its_plots(tmp_path):
  results = _results(tmp_path)
  values = FINALS[128]
  mean = sum(values) / 3
  std = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
  half = scipy_stats.t.ppf(0.975, 2) * std / math.sqrt(3)
  row = "| Switch E128 | 3 | %.3f [%.3f, %.3f] |" % (mean, mean - half,
                                                     mean + half)
  sections = headline_text.sections(lambda: results)
  readme = sections["headline-short"]()
  assert any(line.startswith(row) for line in readme), readme
  # No speed results here: no wall-clock plot, the other two linked.
  assert readme[-2:] == [
      "![validation CE against steps](results/headline/val_ce.png)",
      "![final validation CE against experts](results/headline/"
      "val_ce_vs_experts.png)"]
  assert sections["headline-figures"]() == [
      "![validation CE against steps](../results/headline/val_ce.png)",
      "![final validation CE against experts](../results/headline/"
      "val_ce_vs_experts.png)"]
  # Recorded without provenance: every run is stale, and named.
  provenance = sections["headline-provenance"]()
  assert provenance[0].startswith("Of the 12 stored headline runs, 0 carry")
  assert "`%s`" % headline.switch(headline.PROTOCOL, 2, 128).name in (
      provenance[1])
  assert sections["headline-target"]()[-1].endswith("**not met**.")
  assert "| dense (t5_tiny) | 3 | 30:00 (30:00–30:00) | 1:00 | – |" in (
      sections["headline-time"]())
  # No idle step times stored here: the demo setting is not judged.
  assert "**not enough runs**; not judged:" in sections["headline-demo"]()[0]
  assert sections["headline-pilots"]()[2].startswith(
      "| pilot | %d |  | –" % headline.PROTOCOL.checkpoint_every)
