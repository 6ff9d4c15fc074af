"""Document sections from the headline experiment (results/headline/).

The analysis and its Markdown are the bench report's own
(claims/headline_report.py), recomputed from the stored runs, so the
documents and results/headline/summary.md cannot disagree; only the
links to the plots differ with the document's folder.
"""

import os
from typing import Callable, Dict, List, Sequence

from switch_mtf.bench.claims import headline_report
from switch_mtf.bench.common import store as store_lib


class HeadlineResults:
  """The stored headline runs and pilots, analysed as the report does."""

  def __init__(self, results_dir: str):
    self.folder = os.path.join(results_dir, "headline")
    path = os.path.join(self.folder, "runs.json")
    if not os.path.exists(path):
      raise FileNotFoundError(
          "%s is missing; run `python tools/bench.py --parts=headline` (or "
          "restore it from git)." % path)
    self.entries = dict(store_lib.ResultStore(path).items())
    self.headline = headline_report.Headline(
        self.entries, self.folder, os.path.join(results_dir, "speed"))

  def pilots(self) -> store_lib.ResultStore:
    path = os.path.join(self.folder, headline_report.PILOTS_FILE)
    if not os.path.exists(path):
      raise FileNotFoundError("%s is missing; restore it from git (the "
                              "pilots the protocol was chosen by)." % path)
    return store_lib.ResultStore(path)


def table(results: HeadlineResults) -> List[str]:
  return headline_report.table_lines(results.headline)


def figures(results: HeadlineResults, link_prefix: str) -> List[str]:
  return headline_report.figure_lines(results.headline, link_prefix)


def short(results: HeadlineResults) -> List[str]:
  """README: the table and the figures."""
  links = figures(results, "results/headline/")
  return table(results) + ([""] + links if links else [])


def target(results: HeadlineResults) -> List[str]:
  return headline_report.target_lines(results.headline)


def extrapolation(results: HeadlineResults) -> List[str]:
  return headline_report.extrapolation_lines(results.headline)


def pilot_rule(results: HeadlineResults) -> List[str]:
  return headline_report.pilot_rule_lines(results.headline)


def pilots(results: HeadlineResults) -> List[str]:
  return headline_report.pilot_lines(results.pilots())


def time(results: HeadlineResults) -> List[str]:
  return headline_report.time_lines(results.headline)


def demo(results: HeadlineResults) -> List[str]:
  return headline_report.demo_lines(results.headline)


def distillation(results: HeadlineResults) -> List[str]:
  return headline_report.distill_lines(results.headline)


def provenance_lines(results: HeadlineResults) -> List[str]:
  main = {name: entry for name, entry in results.entries.items()
          if any(run.name == name for run in results.headline.runs)}
  return headline_report.provenance_summary(main)


def sections(results: Callable[[], HeadlineResults]
             ) -> Dict[str, Callable[[], Sequence[str]]]:
  """Marker name -> its lines; `results` loads the results when first used."""
  return {
      "headline-short": lambda: short(results()),
      "headline-table": lambda: table(results()),
      "headline-figures": lambda: figures(results(), "../results/headline/"),
      "headline-target": lambda: target(results()),
      "headline-extrapolation": lambda: extrapolation(results()),
      "headline-pilots": lambda: pilots(results()),
      "headline-pilot-rule": lambda: pilot_rule(results()),
      "headline-time": lambda: time(results()),
      "headline-distill": lambda: distillation(results()),
      "headline-demo": lambda: demo(results()),
      "headline-provenance": lambda: provenance_lines(results()),
  }
