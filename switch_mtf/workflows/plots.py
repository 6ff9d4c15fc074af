"""PNG plots of run data (matplotlib, no display needed).

Each function returns PNG bytes, so the caller can write them anywhere
tf.io.gfile can (local disk or GCS). Figures are small (about 100 KB) so
that they can live in the repo's docs.
"""

import io
import math
from typing import Dict, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from switch_mtf.workflows import run_data

_DPI = 80


def _png(figure) -> bytes:
  buffer = io.BytesIO()
  figure.tight_layout()
  figure.savefig(buffer, format="png", dpi=_DPI)
  plt.close(figure)
  return buffer.getvalue()


def _smoothed(series: run_data.Series, window: int):
  xs = [x for x, _ in series]
  return xs, run_data.moving_mean([v for _, v in series], window)


def training_loss(runs: Sequence[run_data.RunData],
                  wall_clock: bool) -> bytes:
  """Loss of each run (faint: raw; solid: trailing mean) vs steps or
  minutes of training time."""
  figure, axes = plt.subplots(figsize=(7, 4.2))
  for run in runs:
    series = run.loss_wall if wall_clock else run.loss
    if not series:
      continue
    if wall_clock:
      series = [(seconds / 60.0, value) for seconds, value in series]
    window = run_data.smoothing_window(len(series))
    xs, smooth = _smoothed(series, window)
    line, = axes.plot(xs, smooth, linewidth=1.8,
                      marker="o" if len(series) < 30 else None,
                      label="%s (%d-point mean)" % (run.label, window)
                      if window > 1 else run.label)
    if window > 1:
      axes.plot(xs, [v for _, v in series], color=line.get_color(),
                alpha=0.2, linewidth=0.6)
  axes.set_xlabel("training time, minutes (incl. process start-up)"
                  if wall_clock else "step")
  axes.set_ylabel("training loss (total, incl. aux losses)")
  _zoom_to_tail(axes, runs, wall_clock)
  axes.grid(alpha=0.3)
  axes.legend()
  axes.set_title("Training loss vs %s" % ("wall-clock" if wall_clock
                                           else "steps"))
  return _png(figure)


def _zoom_to_tail(axes, runs, wall_clock) -> None:
  """Clip the y-axis to the interesting range: the first steps' loss of
  ~9 would flatten the part where runs differ."""
  values = []
  for run in runs:
    series = run.loss_wall if wall_clock else run.loss
    tail = series[len(series) // 10:]
    values.extend(v for _, v in tail if math.isfinite(v))
  if values:
    low, high = min(values), max(values)
    pad = 0.05 * (high - low or 1.0)
    axes.set_ylim(low - pad, high + pad)


def expert_load(run: run_data.RunData) -> Optional[bytes]:
  """Per Switch layer: each expert's share of the tokens over training."""
  layers = [layer for layer in run.router.values() if layer.expert_fraction]
  if not layers:
    return None
  columns = min(2, len(layers))
  rows = int(math.ceil(len(layers) / columns))
  figure, grid = plt.subplots(rows, columns, figsize=(6.5 * columns,
                                                      3.4 * rows),
                              squeeze=False)
  for axes, layer in zip(grid.flat, layers):
    cmap = plt.get_cmap("tab20" if layer.num_experts > 10 else "tab10")
    for index in sorted(layer.expert_fraction):
      series = layer.expert_fraction[index]
      axes.plot([s for s, _ in series], [v for _, v in series],
                color=cmap(index % cmap.N), linewidth=1.2,
                marker="o" if len(series) < 30 else None,
                label="expert %d" % index)
    axes.axhline(1.0 / layer.num_experts, color="black", linestyle="--",
                 linewidth=1, label="balanced (1/%d)" % layer.num_experts)
    axes.set_title(layer.name, fontsize=10)
    axes.set_xlabel("step")
    axes.set_ylabel("fraction of tokens (router top-1)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
  for axes in list(grid.flat)[len(layers):]:
    axes.axis("off")
  grid.flat[0].legend(fontsize=7, ncol=2)
  figure.suptitle("%s: expert load per Switch layer" % run.label)
  return _png(figure)


def router_scalar(run: run_data.RunData, metric: str,
                  ylabel: str) -> Optional[bytes]:
  """One router metric (e.g. tokens_dropped_fraction) of every layer."""
  layers = [(name, layer.scalars[metric])
            for name, layer in run.router.items() if metric in layer.scalars]
  if not layers:
    return None
  figure, axes = plt.subplots(figsize=(7, 3.8))
  for name, series in layers:
    axes.plot([s for s, _ in series], [v for _, v in series], marker=".",
              linewidth=1.2, label=name)
  axes.set_xlabel("step")
  axes.set_ylabel(ylabel)
  axes.set_ylim(bottom=0)
  axes.grid(alpha=0.3)
  axes.legend(fontsize=8)
  axes.set_title("%s: %s" % (run.label, ylabel))
  return _png(figure)


def eval_metrics(title: str, values: Dict[str, float],
                 baselines: Optional[Dict[str, float]] = None) -> bytes:
  """Bars of final eval metrics, beside a baseline when one is known."""
  baselines = baselines or {}
  names = list(values)
  figure, axes = plt.subplots(figsize=(max(4.5, 1.8 * len(names)), 3.6))
  width = 0.38 if baselines else 0.6
  positions = list(range(len(names)))
  bars = axes.bar([p - (width / 2 if baselines else 0) for p in positions],
                  [values[n] for n in names], width, label="model")
  axes.bar_label(bars, fmt="%.1f")
  if baselines:
    base = axes.bar([p + width / 2 for p in positions],
                    [baselines.get(n, float("nan")) for n in names], width,
                    label="majority class", color="lightgray")
    axes.bar_label(base, fmt="%.1f")
  axes.set_xticks(positions)
  axes.set_xticklabels(names)
  axes.set_ylim(0, 100)
  axes.set_ylabel("score")
  axes.legend()
  axes.set_title(title)
  return _png(figure)

