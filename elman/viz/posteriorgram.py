"""A CTC posteriorgram as a PNG: the probability of every output symbol (rows) at every frame
(columns), the blank's row on top, with the greedy transcript's words marked where the
alignment puts them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from elman.viz.files import save_figure


def plot_posteriorgram(
    probs: Sequence[Sequence[float]],
    symbols: Sequence[str],
    seconds_per_frame: float,
    path: str | Path,
    words: Sequence[tuple[str, float, float]] = (),
    title: str | None = None,
) -> Path:
    """Write the heat map of ``probs`` (frames, len(symbols)) to ``path``; ``words``: (word,
    start s, end s) drawn as spans above it."""
    frames = len(probs)
    if frames == 0 or any(len(row) != len(symbols) for row in probs):
        raise ValueError(
            f"probs: expected (frames >= 1, {len(symbols)}) for {len(symbols)} symbols, got "
            f"{frames} frames of {sorted({len(r) for r in probs})} values"
        )
    seconds = frames * seconds_per_frame
    fig = Figure(figsize=(min(40.0, max(6.0, 2.0 * seconds + 1.5)), 6.0))
    ax = fig.subplots()
    columns = [list(c) for c in zip(*probs, strict=True)]
    image = ax.imshow(
        columns,
        cmap="magma",
        vmin=0.0,
        vmax=1.0,
        aspect="auto",
        extent=(0.0, seconds, len(symbols) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(symbols)), [_label(s) for s in symbols], fontsize=7)
    ax.set_xlabel("seconds")
    ax.set_ylabel("symbol")
    for word, start, end in words:
        ax.axvspan(start, end, ymin=1.0, ymax=1.03, color="tab:cyan", clip_on=False)
        ax.text((start + end) / 2, -0.8, word, ha="center", va="bottom", fontsize=8)
    if title:
        ax.set_title(title, pad=18)
    fig.colorbar(image, ax=ax, fraction=0.03, label="p(symbol | audio)")
    fig.tight_layout()
    return save_figure(fig, path)


def _label(symbol: str) -> str:
    return {"": "blank", " ": "space"}.get(symbol, symbol)


__all__ = ["plot_posteriorgram"]
