"""Metrics: a JSON-lines log (plus TensorBoard when installed) and loss curves as a PNG."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from elman.files import atomic_path


class MetricsLog:
    """Appends one JSON object per line to ``path``; mirrors scalars to TensorBoard if present.

    TensorBoard is optional: with the ``tensorboard`` package installed, events go to
    ``<dir>/tensorboard``; without it, only the JSON-lines file is written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._board = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self._board = SummaryWriter(str(path.parent / "tensorboard"))

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._board is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self._board.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self._board is not None:
            self._board.close()


def read_log(path: Path) -> list[dict]:
    """The records of a metrics log (an absent log has none)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line torn by a killed write
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def truncate_log(path: Path, step: int) -> None:
    """Keep only the records of steps up to ``step`` (a resumed run redoes the rest)."""
    records = read_log(path)
    kept = [r for r in records if r.get("step", 0) <= step]
    if len(kept) < len(records):
        with atomic_path(path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


def logged_seconds(path: Path, step: int) -> float:
    """The training seconds the log recorded last at or before ``step`` (0.0 if none)."""
    times = [r["seconds"] for r in read_log(path) if "seconds" in r and r["step"] <= step]
    return float(times[-1]) if times else 0.0


def plot_curves(
    log: Path, out: Path, keys: tuple[str, ...] = ("train_loss", "val_loss")
) -> Path | None:
    """Plot ``keys`` against step from the log into ``out`` (PNG); None if matplotlib is absent
    (install the ``plot`` extra: ``pip install elman[plot]``)."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no backend is chosen or changed
    except ImportError:
        return None
    records = read_log(log)
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for key in keys:
        points = [
            (r["step"], r[key])
            for r in records
            if isinstance(r.get(key), int | float) and math.isfinite(r[key])
        ]
        if points:
            ax.plot(*zip(*points, strict=True), label=key, marker="." if "val" in key else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return out


class Window:
    """Mean training loss and tokens/s since the last log line."""

    def __init__(self) -> None:
        self.total, self.count, self.since = 0.0, 0, time.perf_counter()

    def add(self, loss: float, count: int) -> None:
        self.total, self.count = self.total + loss * count, self.count + count

    def flush(self) -> tuple[float, float]:
        now = time.perf_counter()
        result = self.total / max(self.count, 1), self.count / max(now - self.since, 1e-9)
        self.total, self.count, self.since = 0.0, 0, now
        return result
