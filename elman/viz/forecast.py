"""A forecast with its interval against the history (and the actual values, if known)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from elman.viz.files import save_figure


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
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(history_time, history, color="black", linewidth=1, label="history")
    band = "interval" if coverage is None else f"{coverage:.0%} interval"
    ax.fill_between(time, lower, upper, color="tab:blue", alpha=0.25, label=band)
    ax.plot(time, point, color="tab:blue", linewidth=1.5, label="forecast")
    if actual is not None:
        ax.plot(time, actual, color="tab:red", linewidth=1, label="actual")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path)
