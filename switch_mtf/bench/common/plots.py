"""PNG plots of the speed and claims results (matplotlib, headless)."""

import os
from typing import Dict, List, Sequence, Tuple

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


KIND_STYLE = {
    "dense": ("black", "o"),
    "switch_einsum": ("tab:blue", "s"),
    "switch_gather": ("tab:green", "^"),
    "moe1d_switch": ("tab:red", "v"),
    "moe1d_top2": ("tab:purple", "D"),
}


def _save(fig, path: str) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def lines(path: str, title: str, xlabel: str, ylabel: str,
          series: Dict[str, Sequence[Tuple[float, float]]],
          logx: bool = False, logy: bool = False,
          styles: Dict[str, Tuple[str, str]] = None) -> str:
  """One line per series of (x, y) points."""
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  for name, points in series.items():
    if not points:
      continue
    xs, ys = zip(*sorted(points))
    color, marker = (styles or KIND_STYLE).get(name, (None, "o"))
    ax.plot(xs, ys, marker=marker, color=color, label=name)
  if logy:
    ax.set_yscale("log")
  return _finish(fig, ax, path, title, xlabel, ylabel, logx)


def _finish(fig, ax, path: str, title: str, xlabel: str, ylabel: str,
            logx: bool) -> str:
  """Axes, titles, grid and legend of a line plot, then saved."""
  if logx:
    ax.set_xscale("log", base=2)
  ax.set_title(title)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)
  return _save(fig, path)


def bars(path: str, title: str, ylabel: str, groups: List[str],
         series: Dict[str, List[float]], hline: float = None,
         errors: Dict[str, List[float]] = None) -> str:
  """Grouped bars: one group per label, one bar per series."""
  fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(groups) + 2), 4.2))
  width = 0.8 / max(len(series), 1)
  for i, (name, values) in enumerate(series.items()):
    xs = [g + i * width for g in range(len(groups))]
    color = KIND_STYLE.get(name, (None, None))[0]
    ax.bar(xs, values, width, label=name, color=color,
           yerr=(errors or {}).get(name))
  ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
  ax.set_xticklabels(groups, rotation=20, fontsize=8)
  if hline is not None:
    ax.axhline(hline, color="gray", linestyle="--", linewidth=1)
  ax.set_title(title)
  ax.set_ylabel(ylabel)
  ax.grid(True, axis="y", alpha=0.3)
  ax.legend(fontsize=8)
  return _save(fig, path)


def mean_curves(path: str, title: str, ylabel: str,
                curves: Dict[str, List[Sequence[Tuple[float, float]]]],
                ylim: Tuple[float, float] = None,
                xlabel: str = "training step") -> str:
  """Per config, the mean over seeds of step-aligned curves (min-max band)."""
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  for name, per_seed in curves.items():
    per_seed = [dict(c) for c in per_seed if c]
    if not per_seed:
      continue
    steps = sorted(set.intersection(*(set(c) for c in per_seed)))
    if not steps:
      continue
    mean = [sum(c[s] for c in per_seed) / len(per_seed) for s in steps]
    low = [min(c[s] for c in per_seed) for s in steps]
    high = [max(c[s] for c in per_seed) for s in steps]
    line, = ax.plot(steps, mean, label="%s (n=%d)" % (name, len(per_seed)))
    if len(per_seed) > 1:
      ax.fill_between(steps, low, high, alpha=0.15, color=line.get_color())
  if ylim:
    ax.set_ylim(*ylim)
  ax.set_title(title)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)
  return _save(fig, path)


def relative(path: str, root: str) -> str:
  return os.path.relpath(path, root)


def intervals(path: str, title: str, xlabel: str, ylabel: str,
              points: Sequence[Tuple[float, float, float, float]],
              reference: Tuple[str, float, float, float] = None,
              logx: bool = False) -> str:
  """Points (x, y, low, high) with error bars, joined by a line.

  reference: (label, y, low, high) drawn apart as a horizontal line with
  its band (e.g. the dense baseline on an experts axis).
  """
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  if points:
    xs, ys, lows, highs = zip(*sorted(points))
    ax.errorbar(xs, ys, yerr=[[y - l for y, l in zip(ys, lows)],
                              [h - y for y, h in zip(ys, highs)]],
                marker="o", capsize=4, label="Switch")
  if reference:
    label, y, low, high = reference
    ax.axhline(y, color="black", linestyle="--", linewidth=1, label=label)
    ax.axhspan(low, high, color="black", alpha=0.08)
  return _finish(fig, ax, path, title, xlabel, ylabel, logx)
