"""The runs a server answers for: each directory opened as its task's ``Run`` and wrapped in
the HTTP adapter its ``TaskSpec`` names."""

from __future__ import annotations

from pathlib import Path

from elman.serve.served import Served
from elman.tasks.registry import checkpoint_of, load_run
from elman.train.checkpoint import reading


def load_one(path: str | Path, name: str | None = None) -> Served:
    """The run in directory ``path``; a checkpoint whose header or tensors do not make the
    model it claims is one ``CheckpointError`` naming the file."""
    path = Path(path)
    checkpoint = checkpoint_of(path)
    with reading(checkpoint):  # what the loaders do beyond open_model reads the header too
        run = load_run(path, checkpoint.stem)
        return run.spec.served_class()(name or path.resolve().name, run)


def load_models(paths: list[str | Path]) -> list[Served]:
    """Each directory's model, named after the directory (names must differ)."""
    if not paths:
        raise ValueError("dirs: expected at least one model directory")
    names = [Path(p).resolve().name for p in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"dirs: two model directories share the name(s) {twice}; rename one")
    return [load_one(p, n) for p, n in zip(paths, names, strict=True)]


__all__ = ["load_models", "load_one"]
