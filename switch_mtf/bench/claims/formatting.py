"""Text for the claims' statistics, shared by summary.md and the documents.

One wording everywhere: "mean ± std", "mean [95% CI], significant or not",
"not reached in k of n seeds"; the bench's summary adds the seed count
(`show_n`), the generated documents show it in its own column.
"""

from typing import Any, Dict, Optional


def _seeds(n: int, show_n: bool) -> str:
  return " (n=%d)" % n if show_n else ""


def mean_std(spread: Optional[Dict[str, float]], digits: int = 3,
             percent: bool = False, show_n: bool = False) -> str:
  """mean ± std over seeds, or – if absent."""
  if not spread:
    return "–"
  scale, unit = (100.0, "%") if percent else (1.0, "")
  if spread["n"] == 1:
    return "%.*f%s (1 seed)" % (digits, scale * spread["mean"], unit)
  return "%.*f%s ± %.*f%s%s" % (digits, scale * spread["mean"], unit, digits,
                                scale * spread["std"], unit,
                                _seeds(spread["n"], show_n))


def interval(summary: Optional[Dict[str, Any]], digits: int = 3,
             show_n: bool = False) -> str:
  """Paired mean difference [95% t-interval], significant or not."""
  if not summary:
    return "–"
  if summary["low"] is None:
    return "%+.*f (1 seed, no interval)" % (digits, summary["mean"])
  return "%+.*f [%+.*f, %+.*f], %s%s" % (
      digits, summary["mean"], digits, summary["low"], digits,
      summary["high"],
      "significant" if summary["significant"] else "not significant",
      _seeds(summary["n"], show_n))


def speedup(summary: Optional[Dict[str, Any]], show_n: bool = False) -> str:
  """Step speed-up with its interval, or how many seeds never got there."""
  if not summary:
    return "–"
  if summary["reached"] < summary["seeds"]:
    return "not reached in %d of %d seeds" % (
        summary["seeds"] - summary["reached"], summary["seeds"])
  ci = summary["interval"]
  if ci["low"] is None:
    return "%.2f× (1 seed)" % ci["mean"]
  return "%.2f× [%.2f, %.2f], %s%s" % (
      ci["mean"], ci["low"], ci["high"],
      "significant" if ci["significant"] else "not significant",
      _seeds(ci["n"], show_n))
