"""Which ``Served`` class answers for a run directory, chosen by its checkpoint's task."""

from __future__ import annotations

from pathlib import Path

from elman.serve.labels import ClassifyModel, Seq2SeqModel, TagModel
from elman.serve.language import CharModel, WordModel
from elman.serve.music import MusicModel
from elman.serve.series import ForecastModel
from elman.serve.served import Served
from elman.tasks.rundir import checkpoint_of
from elman.train.checkpoint import CheckpointError, read_meta, reading

FAMILIES: dict[str, type[Served]] = {
    "charlm": CharModel,
    "wordlm": WordModel,
    "classify": ClassifyModel,
    "tag": TagModel,
    "seq2seq": Seq2SeqModel,
    "forecast": ForecastModel,
    "music": MusicModel,
}


def load_one(path: str | Path, name: str | None = None) -> Served:
    """The run in directory ``path``; a checkpoint whose header or tensors do not make the
    model it claims is one ``CheckpointError`` naming the file."""
    path = Path(path)
    checkpoint = checkpoint_of(path)
    meta = read_meta(checkpoint)
    task = meta.get("task")
    cls = FAMILIES.get(task) if isinstance(task, str) else None
    if cls is None:
        raise CheckpointError(
            f"checkpoint {str(checkpoint)!r}: serving task {task!r} is not "
            f"supported; expected one of {', '.join(FAMILIES)}"
        )
    with reading(checkpoint):  # what the loaders do beyond open_model reads the header too
        return cls(name or path.resolve().name, path, checkpoint.stem)


def load_models(paths: list[str | Path]) -> list[Served]:
    """Each directory's model, named after the directory (names must differ)."""
    if not paths:
        raise ValueError("dirs: expected at least one model directory")
    names = [Path(p).resolve().name for p in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"dirs: two model directories share the name(s) {twice}; rename one")
    return [load_one(p, n) for p, n in zip(paths, names, strict=True)]


__all__ = ["FAMILIES", "load_models", "load_one"]
