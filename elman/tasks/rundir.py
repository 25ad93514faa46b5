"""What every task does with a run directory: train into it, resume it, open its model."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from elman.train import TrainConfig, Trainer, seed_everything
from elman.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_meta,
    reading,
    unprefixed,
)


def open_run(out: str | Path, name: str, which: str = "best") -> tuple[dict[str, Tensor], dict]:
    """Tensors and header of the ``which`` ("best" or "last") checkpoint of task ``name``."""
    if which not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {which!r}")
    out = Path(out)
    if not out.is_dir():
        raise CheckpointError(f"model directory {str(out)!r} does not exist")
    return load_checkpoint(out / f"{which}.safetensors", name)


def open_model(
    out: str | Path, name: str, which: str, build: Callable[[dict], tuple[nn.Module, Any]]
) -> tuple[Any, Any, dict]:
    """A run's model in eval mode, what ``build`` made beside it (its vocabulary, say) and
    the checkpoint meta: ``build(task_config)`` makes the model, the checkpoint fills it. A
    header that does not build, or tensors that do not fit it, are a ``CheckpointError``."""
    tensors, meta = open_run(out, name, which)
    with reading(Path(out) / f"{which}.safetensors"):
        model, extra = build(meta["task_config"])
        model.load_state_dict(unprefixed("model.", tensors))
    return model.eval(), extra, meta


def resume_run(
    out: str | Path,
    name: str,
    task_from_meta: Callable[[dict], Any],
    steps: int | None = None,
    until: int | None = None,
) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it (``steps``: a new
    total step count)."""
    path = Path(out) / "last.safetensors"
    meta = read_meta(path, name)
    with reading(path):
        if meta["position"]["step"] >= (meta["train"]["steps"] if steps is None else steps):
            return {}  # nothing to train: the run stays exactly as it is
        # a new total keeps the schedule's span: the rate goes on from where the run left it
        span = meta["train"].get("schedule_steps") or meta["train"].get("steps")
        extra = {} if steps is None else {"steps": steps, "schedule_steps": span}
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


def fit_split_source(
    load_source: Callable[[dict], tuple],
    make_task: Callable[..., Any],
    source: dict,
    config: Any,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    epochs: int | None = None,
) -> dict[str, float]:
    """Seed, read the (train, valid, test) splits ``source`` describes, build the task from
    the first two and train it into ``out`` (the tagging and seq2seq tasks' ``train``)."""
    seed_everything(train_config.seed)
    train_set, valid_set, _ = load_source(source)
    task = make_task(train_set, valid_set, config, train_config.seed, source=source)
    return fit_task(task, train_config, out, until, epochs)


def split_task_from_meta(
    meta: dict,
    load_source: Callable[[dict], tuple],
    make_task: Callable[..., Any],
    config_cls,
    vocab_cls,
) -> Any:
    """Rebuild such a task from a checkpoint header (its config, vocabularies and source)."""
    info = meta["task_config"]
    train_set, valid_set, _ = load_source(info["source"])
    config, vocab = config_cls(**info["model"]), vocab_cls.from_json(info["vocab"])
    return make_task(train_set, valid_set, config, info["seed"], vocab, info["source"])


def recorded_source(meta: dict, path: str | Path) -> dict:
    """The data source the header ``meta`` of checkpoint ``path`` records (any task's); a
    tampered one is a ``CheckpointError`` naming the file."""
    with reading(path):
        source = meta["task_config"]["source"]
        if not isinstance(source, dict):
            raise TypeError(f"task_config.source is a {type(source).__name__}, not an object")
    return source
