"""Writing figures without ever leaving a half-written file where the user expects one."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from elman.files import atomic_path


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save ``fig`` to ``path`` through a temporary file. A ``Figure`` made directly (not
    through pyplot) is not registered anywhere, so nothing needs closing."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return path
