"""Attention weights as a PNG heat map: one row per output token, one column per input token."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from elman.viz.files import save_figure


def plot_attention(
    weights: Sequence[Sequence[float]],
    inputs: Sequence[str],
    outputs: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Write the heat map of ``weights`` (len(outputs), len(inputs)) to ``path``."""
    rows, cols = len(weights), len(weights[0]) if weights else 0
    if (rows, cols) != (len(outputs), len(inputs)):
        raise ValueError(
            f"weights: expected shape ({len(outputs)}, {len(inputs)}) for {len(outputs)} "
            f"outputs and {len(inputs)} inputs, got ({rows}, {cols})"
        )
    fig = Figure(figsize=(max(3.0, 0.4 * cols + 1.5), max(3.0, 0.35 * rows + 1.5)))
    ax = fig.subplots()
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols), list(inputs))
    ax.set_yticks(range(rows), list(outputs))
    ax.set_xlabel("input")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_figure(fig, path)
