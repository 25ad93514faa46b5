"""Starting a run from another run of the same task (``--init-from``): the source run, checked
to build the same model, and what the new checkpoint records of where its weights came from.
Each task names its own ``shape``: the config fields that fix its weights' shapes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def shape_of(config: Any, shape: Sequence[str]) -> dict[str, Any]:
    """The ``shape`` fields ``config`` has."""
    return {k: getattr(config, k) for k in shape if hasattr(config, k)}


def source_run(path: str | Path, task: str) -> Any:
    """The run ``path`` holds, which must be of ``task`` (a word LM starts from a word LM)."""
    from elman.tasks.registry import load_run  # the registry imports every task package

    run = load_run(path)
    if run.task != task:
        a = "an" if task[0] in "aeiou" else "a"  # "an asr run"
        raise ValueError(
            f"--init-from: {a} {task} starts from {a} {task} run; {path} holds a {run.task}"
        )
    return run


def check_same(config: Any, run: Any, shape: Sequence[str], whose: str) -> None:
    """``config`` must build the source run's model: the differences, in one error."""
    mine, theirs = shape_of(config, shape), shape_of(run.config, shape)
    wrong = [f"{k} {mine[k]!r} ({whose} is {theirs[k]!r})" for k in mine if mine[k] != theirs[k]]
    if wrong:
        raise ValueError(f"--init-from: the model differs from {whose}: " + "; ".join(wrong))
