"""The one evaluation rule every task follows: eval mode, no gradients, the model's mode put
back afterwards, and every batch moved to the model's device before it is read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from elman.train.device import device_of, move


@contextmanager
def evaluating(model: nn.Module) -> Iterator[Callable[[Any], Any]]:
    """``with evaluating(model) as to_model:`` runs its body in eval mode without gradients;
    ``to_model(batch)`` is the batch (tensors, tuples, dicts, dataclasses) on the model's
    device. The model's training mode is restored even when the body raises."""
    was_training, device = model.training, device_of(model)
    model.eval()
    try:
        with torch.no_grad():
            yield lambda batch: move(batch, device)
    finally:
        model.train(was_training)


__all__ = ["evaluating"]
