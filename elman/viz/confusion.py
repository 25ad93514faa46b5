"""A confusion matrix as a PNG heat map (rows: true class, columns: predicted)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from elman.viz.files import save_figure


def plot_confusion(
    confusion: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path
) -> Path:
    """Write the heat map of ``confusion`` to ``path``, counts printed in each cell."""
    k = len(classes)
    size = max(4.0, 0.45 * k + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=90 if k > 6 else 0)
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max((max(r) for r in confusion), default=0)
    if k <= 30:
        for i, row in enumerate(confusion):
            for j, v in enumerate(row):
                color = "white" if v > top / 2 else "black"
                ax.text(j, i, str(v), ha="center", va="center", color=color, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_figure(fig, path)
