"""Forecasts with their intervals against the history (and the actual values, if known):
one series, or a grid of small panels for many."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure

from elman.viz.files import save_figure

MAX_PANELS = 12  # a grid of more panels is too small to read: the rest are left out


@dataclass(frozen=True)
class Panel:
    """One series' forecast: history (its times and values), the forecast's times, point,
    lower and upper bounds, the actual values if known, and a title."""

    history_time: np.ndarray
    history: np.ndarray
    time: np.ndarray
    point: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    actual: np.ndarray | None = None
    title: str | None = None


def check_plot_path(path: str | Path, option: str = "--plot") -> Path:
    """``path`` as a Path for a figure, refusing (naming ``option``) a directory and a file
    extension matplotlib cannot write, with the ones it can."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a directory; expected a file name")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats:
        raise ValueError(
            f"{option} {str(path)!r}: the extension {path.suffix or '(none)'!r} is not an image "
            f"format; use one of {', '.join('.' + f for f in sorted(formats))}"
        )
    return path


def _draw(ax, p: Panel, band: str, legend: bool) -> None:
    ax.plot(p.history_time, p.history, color="black", linewidth=1, label="history")
    ax.fill_between(p.time, p.lower, p.upper, color="tab:blue", alpha=0.25, label=band)
    ax.plot(p.time, p.point, color="tab:blue", linewidth=1.5, label="forecast")
    if p.actual is not None:
        ax.plot(p.time, p.actual, color="tab:red", linewidth=1, label="actual")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="upper left")
    if p.title:
        ax.set_title(p.title)


def plot_forecasts(panels: list[Panel], path: str | Path, coverage: float | None = None) -> Path:
    """Write the first ``MAX_PANELS`` forecasts to ``path``: one plot, or a grid of panels
    (the legend on the first)."""
    if not panels:
        raise ValueError("plot_forecasts: no series to plot")
    panels = panels[:MAX_PANELS]
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    size = (9, 4) if len(panels) == 1 else (4.5 * cols, 3 * rows)
    fig = Figure(figsize=size)
    axes = fig.subplots(rows, cols, squeeze=False)
    band = "interval" if coverage is None else f"{coverage:.0%} interval"
    for k, ax in enumerate(axes.flat):
        if k < len(panels):
            _draw(ax, panels[k], band, legend=k == 0)
        else:
            ax.set_visible(False)
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_forecast(
    history_time,
    history: np.ndarray,
    time,
    point: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    path: str | Path,
    actual: np.ndarray | None = None,
    title: str | None = None,
    coverage: float | None = None,
) -> Path:
    """Write the plot to ``path``: history, point forecast, shaded interval, actuals."""
    panel = Panel(history_time, history, time, point, lower, upper, actual, title)
    return plot_forecasts([panel], path, coverage)


__all__ = ["MAX_PANELS", "Panel", "check_plot_path", "plot_forecast", "plot_forecasts"]
