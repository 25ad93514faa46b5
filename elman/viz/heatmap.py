"""Text coloured by a value per character (or token): the picture of Karpathy et al. 2015,
where one LSTM unit lights up inside quotes. HTML needs nothing; PNG needs matplotlib."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from elman.files import atomic_path


def _colour(v: float, scale: float) -> str:
    """Blue for negative, white at zero, red for positive (alpha by magnitude)."""
    a = 0.0 if scale == 0 else min(1.0, abs(v) / scale)
    return f"rgba(214,39,40,{a:.3f})" if v > 0 else f"rgba(31,119,180,{a:.3f})"


def _check(pieces: Sequence[str], values: Sequence[float] | Tensor) -> list[float]:
    vals = [float(v) for v in values]
    if len(vals) != len(pieces):
        raise ValueError(
            f"values: expected one per character/token ({len(pieces)}), got {len(vals)}"
        )
    if any(not math.isfinite(v) for v in vals):
        raise ValueError("values: every value must be finite")
    return vals


def text_heatmap_html(
    pieces: Sequence[str],
    values: Sequence[float] | Tensor,
    title: str = "",
    scale: float | None = None,
) -> str:
    """An HTML page with each piece (a character or a token) on a background coloured by its
    value; ``scale`` is the value of full colour (default: the largest magnitude)."""
    vals = _check(pieces, values)
    scale = max((abs(v) for v in vals), default=0.0) if scale is None else scale
    spans = []
    for piece, v in zip(pieces, vals, strict=True):
        shown = html.escape(piece).replace("\n", "&#8629;<br>")
        spans.append(f'<span title="{v:.3f}" style="background:{_colour(v, scale)}">{shown}</span>')
    return (
        "<!doctype html><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><h3>{html.escape(title)}</h3>"
        "<pre style='font:14px/1.6 monospace;white-space:pre-wrap'>" + "".join(spans) + "</pre>"
    )


def write_text_heatmap(
    path: str | Path,
    pieces: Sequence[str],
    values: Sequence[float] | Tensor,
    title: str = "",
    width: int = 80,
) -> Path:
    """Write the heat map as HTML (``.html``) or PNG (``.png``, ``width`` pieces per line)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".png"):
        raise ValueError(f"path: expected a .html or .png file, got {str(path)!r}")
    if suffix == ".html":
        page = text_heatmap_html(pieces, values, title)
        with atomic_path(path) as tmp:
            tmp.write_text(page, encoding="utf-8")
        return path
    return _png(path, pieces, _check(pieces, values), title, width)


def _png(path: Path, pieces: Sequence[str], vals: list[float], title: str, width: int) -> Path:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from elman.viz.files import save_figure

    lines: list[list[tuple[str, float]]] = [[]]
    for piece, v in zip(pieces, vals, strict=True):
        if len(lines[-1]) >= width:
            lines.append([])
        lines[-1].append((piece, v))
        if piece == "\n":
            lines.append([])
    scale = max((abs(v) for v in vals), default=0.0)
    cols = max(len(line) for line in lines)
    fig = Figure(figsize=(max(4.0, cols * 0.12), 0.5 + 0.22 * len(lines)))
    ax = fig.add_axes((0, 0, 1, 1 - 0.4 / (0.5 + 0.22 * len(lines))))
    ax.set_xlim(0, cols)
    ax.set_ylim(len(lines), 0)
    ax.axis("off")
    for row, line in enumerate(lines):
        for col, (piece, v) in enumerate(line):
            a = 0.0 if scale == 0 else min(1.0, abs(v) / scale)
            colour = (0.84, 0.15, 0.16, a) if v > 0 else (0.12, 0.47, 0.71, a)
            ax.add_patch(Rectangle((col, row), 1, 1, color=colour, linewidth=0))
            shown = "↵" if piece == "\n" else piece
            ax.text(
                col + 0.5,
                row + 0.55,
                shown,
                ha="center",
                va="center",
                family="monospace",
                fontsize=8,
            )
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
