"""What every task does with a run directory: train into it, resume it, open its model."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import Tensor

from elman.train import TrainConfig, Trainer
from elman.train.checkpoint import CheckpointError, load_checkpoint, read_meta


def open_run(out: str | Path, name: str, which: str = "best") -> tuple[dict[str, Tensor], dict]:
    """Tensors and header of the ``which`` ("best" or "last") checkpoint of task ``name``."""
    if which not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {which!r}")
    out = Path(out)
    if not out.is_dir():
        raise CheckpointError(f"model directory {str(out)!r} does not exist")
    return load_checkpoint(out / f"{which}.safetensors", name)


def resume_run(
    out: str | Path,
    name: str,
    task_from_meta: Callable[[dict], Any],
    steps: int | None = None,
    until: int | None = None,
) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it (``steps``: a new
    total step count)."""
    meta = read_meta(Path(out) / "last.safetensors", name)
    extra = {} if steps is None else {"steps": steps}
    trainer = Trainer(task_from_meta(meta), TrainConfig.from_json(meta["train"] | extra), out)
    trainer.restore()
    return trainer.fit(until)


def fit_task(
    task: Any,
    config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    epochs: int | None = None,
) -> dict[str, float]:
    """Train ``task`` into ``out``; ``epochs`` (if given) sets the step count to that many
    passes over the task's training batches."""
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        per_epoch = max(1, math.ceil(len(task.batches(0)) / config.accumulate))
        config = replace(config, steps=epochs * per_epoch)
    return Trainer(task, config, out).fit(until)
