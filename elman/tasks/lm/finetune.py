"""A language model that starts from another (ULMFiT's second stage: the pretrained LM
fine-tuned on the target task's texts). The new run takes the source's vocabulary and every
weight; its config must give the same model (``SHAPE``), which the command line fills in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

# the fields that fix a language model's weights and vocabulary (dropouts and data are free)
SHAPE = (
    "cell",
    "embedding",
    "hidden",
    "layers",
    "reverse",
    "tie",
    "cutoffs",
    "tokenizer",
    "lower",
    "min_freq",
    "max_vocab",
)


def shape_of(config: Any) -> dict[str, Any]:
    """The ``SHAPE`` fields ``config`` has."""
    return {k: getattr(config, k) for k in SHAPE if hasattr(config, k)}


def source_run(path: str | Path, task: str) -> Any:
    """The run ``path`` holds, which must be of ``task`` (a word LM starts from a word LM)."""
    from elman.tasks.registry import load_run  # the registry imports every task package

    run = load_run(path)
    if run.task != task:
        raise ValueError(
            f"--init-from: a {task} starts from a {task} run; {path} holds a {run.task}"
        )
    return run


def check_same(config: Any, run: Any) -> None:
    """``config`` must build the source run's model: the differences, in one error."""
    mine, theirs = shape_of(config), shape_of(run.config)
    wrong = [f"{k} {mine[k]!r} (the LM's is {theirs[k]!r})" for k in mine if mine[k] != theirs[k]]
    if wrong:
        raise ValueError("--init-from: the model differs from the LM's: " + "; ".join(wrong))


def copy_all(model: nn.Module, run: Any) -> dict:
    """Every weight of the source run into ``model``; what the checkpoint records of it."""
    model.load_state_dict(run.model.state_dict())
    return {"runs": [run.pretrained().source], "copied": "every weight"}
