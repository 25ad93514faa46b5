"""Choosing the next token from a model's logits: greedy, temperature, top-k and top-p sampling.

p_i = softmax(z_i / τ)                       temperature τ > 0 (τ = 0: greedy argmax)
top-k: keep the k largest p_i                (Fan, Lewis & Dauphin 2018)
top-p: keep the smallest set with Σ p_i ≥ p  (nucleus; Holtzman et al. 2020)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Sampling:
    """temperature: 0 picks the most likely token (greedy); top_k / top_p restrict the choice
    before sampling (None: no restriction); seed: a fixed seed gives reproducible samples."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, int | float) or not t >= 0:
            raise ValueError(f"temperature must be a number >= 0, got {t!r}")
        k = self.top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"top_k must be an integer >= 1, got {k!r}")
        p = self.top_p
        if p is not None and (
            isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1
        ):
            raise ValueError(f"top_p must be a number in (0, 1], got {p!r}")

    def generator(self) -> torch.Generator | None:
        return None if self.seed is None else torch.Generator().manual_seed(self.seed)


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """``logits`` (B, V) with everything outside the top-k / nucleus set to -inf."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # mass before this token already reaches p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def next_token(
    logits: Tensor, sampling: Sampling, generator: torch.Generator | None = None
) -> Tensor:
    """One token id per row of ``logits`` (B, V) -> (B,)."""
    if sampling.temperature == 0:
        return logits.argmax(-1)
    z = filter_logits(logits.float() / sampling.temperature, sampling.top_k, sampling.top_p)
    return torch.multinomial(z.softmax(-1), 1, generator=generator).squeeze(-1)
