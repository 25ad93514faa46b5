"""Where training runs: naming a device, and moving batches and states onto it."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from torch import Tensor, nn


def resolve_device(name: str) -> torch.device:
    """``name`` ("cpu", "cuda", "cuda:N" or "auto") as a device this machine has.

    "auto" is CUDA when available, else the CPU. Under ``torchrun`` a bare "cuda" (or "auto")
    means this rank's GPU, ``cuda:$LOCAL_RANK``.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {name!r}") from e
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r}, but this machine has no CUDA GPU; use 'cpu'")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={name!r}, but this machine has {torch.cuda.device_count()} GPU(s)"
            )
    return device


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def move(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor in it on ``device``: tensors, tuples (named too), lists, dicts, and
    dataclasses (batches) of them; anything else as it is."""
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a NamedTuple takes its fields
        return type(obj)(*(move(v, device) for v in obj))
    if isinstance(obj, tuple | list):
        return type(obj)(move(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: move(v, device) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: move(getattr(obj, f.name), device) for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **changes)
    return obj
