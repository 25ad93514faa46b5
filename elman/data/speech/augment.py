"""SpecAugment (Park et al. 2019): masks over feature frames, drawn anew per utterance.

frequency:  f ~ U[0, F], f0 ~ U[0, ν - f)                (ν: feature dimension)
time:       t ~ U[0, min(T, ⌊pτ⌋)], t0 ~ U[0, τ - t)    (τ: the utterance's frames)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from elman.data.speech.features import _integer, _number
from elman.fields import option


@dataclass(frozen=True, kw_only=True)
class SpecAugment:
    """Masks m_F frequency bands of width <= F and m_T time bands of width <= min(T, ⌊pτ⌋)
    (τ: the utterance's frames) with ``value`` (0 = the mean after normalisation)."""

    freq_masks: int = option(2, "frequency masks m_F per utterance (SpecAugment)")
    freq_width: int = option(15, "widest frequency mask F")
    time_masks: int = option(2, "time masks m_T per utterance")
    time_width: int = option(40, "widest time mask T")
    time_fraction: float = option(0.2, "time masks cover at most this fraction p each")
    value: float = 0.0

    def __post_init__(self) -> None:
        for name in ("freq_masks", "freq_width", "time_masks", "time_width"):
            _integer(name, getattr(self, name), 0)
        _number("time_fraction", self.time_fraction, 0, 1, "in [0, 1]")
        _number("value", self.value, -1e30, 1e30, "(finite)")


def _band(size: int, width: int, generator: torch.Generator | None) -> tuple[int, int]:
    w = int(torch.randint(0, min(width, size) + 1, (1,), generator=generator))
    start = int(torch.randint(0, size - w + 1, (1,), generator=generator))
    return start, start + w


def _mask(f: Tensor, n: int, config: SpecAugment, generator) -> None:
    nu = f.shape[-1]
    for _ in range(config.freq_masks if n and nu else 0):
        lo, hi = _band(nu, config.freq_width, generator)
        f[:n, lo:hi] = config.value
    cap = min(config.time_width, math.floor(config.time_fraction * n))
    for _ in range(config.time_masks if n and nu else 0):
        lo, hi = _band(n, cap, generator)
        f[lo:hi, :] = config.value


def spec_augment(
    feats: Tensor,
    config: SpecAugment,
    generator: torch.Generator | None = None,
    lengths: Tensor | None = None,
) -> Tensor:
    """feats (frames, dim) or (B, frames, dim) with SpecAugment's masks, new masks per
    utterance, the same for the same ``generator`` state; ``lengths`` (B,) keeps padding
    frames out of the time masks' range and fraction. Apply before ``stack_frames``: after
    it, a frequency band would cut through every stacked frame differently."""
    if feats.ndim not in (2, 3):
        raise ValueError(f"feats must be (frames, dim) or (B, frames, dim), got {feats.shape}")
    out = feats.clone() if feats.ndim == 3 else feats[None].clone()
    ns = [out.shape[1]] * len(out) if lengths is None else torch.as_tensor(lengths).view(-1)
    if len(ns) != len(out):
        raise ValueError(f"lengths must hold one length per utterance ({len(out)}), got {len(ns)}")
    for f, n in zip(out, ns, strict=True):
        _mask(f, min(int(n), f.shape[0]), config, generator)
    return out if feats.ndim == 3 else out[0]
