"""A language model that starts from another (ULMFiT's second stage: the pretrained LM
fine-tuned on the target task's texts). The new run takes the source's vocabulary and every
weight; its config must give the same model (``SHAPE``), which the command line fills in."""

from __future__ import annotations

from typing import Any

from torch import nn

from elman.tasks import finetune as shapes
from elman.tasks.finetune import source_run

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
    return shapes.shape_of(config, SHAPE)


def check_same(config: Any, run: Any) -> None:
    """``config`` must build the source LM's model: the differences, in one error."""
    shapes.check_same(config, run, SHAPE, "the LM's")


def copy_all(model: nn.Module, run: Any) -> dict:
    """Every weight of the source run into ``model``; what the checkpoint records of it."""
    model.load_state_dict(run.model.state_dict())
    return {"runs": [run.pretrained().source], "copied": "every weight"}


__all__ = ["SHAPE", "check_same", "copy_all", "shape_of", "source_run"]
