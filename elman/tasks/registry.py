"""Every task by name: one line each, naming where its ``TaskSpec`` lives (imported on first
use, so ``import elman.tasks`` stays cheap). Adding a task is one package and one line here."""

from __future__ import annotations

import importlib
from pathlib import Path

from elman.tasks.spec import Run, TaskSpec
from elman.train.checkpoint import CheckpointError, read_meta

TASKS: dict[str, str] = {
    "charlm": "elman.tasks.lm.run:CHARLM",
    "wordlm": "elman.tasks.lm.run:WORDLM",
    "classify": "elman.tasks.classify.run:SPEC",
    "tag": "elman.tasks.tag.run:SPEC",
    "seq2seq": "elman.tasks.seq2seq.run:SPEC",
    "forecast": "elman.tasks.forecast.run:SPEC",
    "music": "elman.tasks.music.run:SPEC",
    "asr": "elman.tasks.asr.run:SPEC",
}


def names() -> tuple[str, ...]:
    return tuple(TASKS)


def spec(name: str) -> TaskSpec:
    """The spec of task ``name``; an unknown name is a ValueError listing the known ones."""
    where = TASKS.get(name) if isinstance(name, str) else None
    if where is None:
        raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {name!r}")
    module, _, attribute = where.partition(":")
    return getattr(importlib.import_module(module), attribute)


def specs() -> list[TaskSpec]:
    return [spec(name) for name in TASKS]


def checkpoint_of(out: str | Path) -> Path:
    """The checkpoint a run directory is read from: best, else last (a run stopped before
    its first evaluation)."""
    out = Path(out)
    if not out.is_dir():
        raise CheckpointError(f"model directory {str(out)!r} does not exist")
    for which in ("best", "last"):
        if (out / f"{which}.safetensors").exists():
            return out / f"{which}.safetensors"
    raise CheckpointError(f"model directory {str(out)!r} holds no checkpoint")


def task_of(out: str | Path, which: str | None = None) -> str:
    """The task whose run ``out`` holds (from the header of checkpoint ``which``, default:
    best, else last)."""
    path = checkpoint_of(out) if which is None else Path(out) / f"{which}.safetensors"
    task = read_meta(path).get("task")
    if not isinstance(task, str) or task not in TASKS:
        raise CheckpointError(
            f"checkpoint {str(path)!r} names task {task!r}, which this version does not know "
            f"(it knows {', '.join(TASKS)})"
        )
    return task


def spec_of(out: str | Path) -> TaskSpec:
    """The spec of the task whose run ``out`` holds."""
    return spec(task_of(out))


def load_run(out: str | Path, which: str = "best") -> Run:
    """The trained run in directory ``out`` (checkpoint ``which``: best or last), whatever
    its task."""
    if which not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {which!r}")
    return spec(task_of(out)).load(out, which)


__all__ = ["TASKS", "checkpoint_of", "load_run", "names", "spec", "spec_of", "specs", "task_of"]
