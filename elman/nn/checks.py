"""Checks at the module boundary: each error names the argument, what came, what was expected."""

from __future__ import annotations

import os

import torch
from torch import Tensor


def check_tensor(name: str, x: object, ranks: tuple[int, ...], meaning: str) -> Tensor:
    """``x`` must be a floating tensor with one of ``ranks`` dimensions, as ``meaning`` says."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.dim() not in ranks:
        raise ValueError(
            f"{name}: expected {meaning}, got a {x.dim()}-D tensor of shape {tuple(x.shape)}"
        )
    return x


def check_size(name: str, x: Tensor, dim: int, expected: int, what: str) -> None:
    """``x.shape[dim]`` must equal ``expected`` (``what`` names the setting it comes from)."""
    if x.shape[dim] != expected:
        raise ValueError(
            f"{name}: expected size {expected} ({what}) in dimension {dim}, got "
            f"shape {tuple(x.shape)}"
        )


def check_dtype(name: str, x: Tensor, dtype: torch.dtype) -> None:
    """``x`` must share the parameters' dtype: a mismatch would fail deep inside torch."""
    if x.dtype != dtype:
        raise TypeError(
            f"{name}: dtype {x.dtype} does not match the module's parameters "
            f"({dtype}); cast the input or the module (e.g. .double())"
        )


def check_finite(name: str, x: Tensor) -> None:
    """Raise on the first NaN or inf in ``x``."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name}: contains NaN or inf (first at index {index}, value "
            f"{x[index].item()}); expected finite values because check_finite=True"
        )


def check_state(
    name: str, s: object, shape: tuple[int, ...], meaning: str, dtype: torch.dtype
) -> Tensor:
    """A state tensor must have exactly ``shape`` (``meaning`` spells out its dimensions)."""
    if not isinstance(s, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(s).__name__}")
    if tuple(s.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape} = {meaning}, got {tuple(s.shape)}")
    check_dtype(name, s, dtype)
    return s


def check_positive_int(name: str, value: object) -> None:
    """``value`` must be an int > 0 (bools are rejected: True is not a size)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_fields(
    config: object,
    choices: dict[str, tuple[str, ...]] | None = None,
    positive: tuple[str, ...] = (),
    optional_positive: tuple[str, ...] = (),
    rates: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
) -> None:
    """Validate a config's fields by kind: ``choices`` (one of the allowed strings), positive
    integers (``optional_positive`` may also be None), rates in [0, 1) (dropouts), booleans."""
    for name, allowed in (choices or {}).items():
        value = getattr(config, name)
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    for name in positive:
        check_positive_int(name, getattr(config, name))
    for name in optional_positive:
        if getattr(config, name) is not None:
            check_positive_int(name, getattr(config, name))
    for name in rates:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    for name in flags:
        if not isinstance(getattr(config, name), bool):
            raise TypeError(f"{name} must be True or False, got {getattr(config, name)!r}")


def check_fits_in_memory(weights: int, what: str, bytes_per: int = 4) -> None:
    """A module of ``weights`` parameters must fit in this machine's memory (``what`` names
    the sizes that give it): refused before any allocation, which would fail (or, for a
    billion stacked layers, take forever to build) with a less clear message."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: let the allocator decide
        return
    if weights * bytes_per > memory:
        shown = min(weights, 10**300)  # a float can show it
        raise ValueError(
            f"{what} give {shown:.3g} weights ({shown * bytes_per / 2**30:.3g} GiB), more "
            f"than this machine's {memory / 2**30:.3g} GiB of memory; choose smaller sizes"
        )
