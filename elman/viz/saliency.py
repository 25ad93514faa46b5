"""Input saliency: which earlier steps most changed a prediction.

- gradient x input (Shrikumar et al. 2017; Denil et al. 2014): s_t = Σ_f x_{t,f} ∂y/∂x_{t,f},
  a first-order estimate of how much y owes to step t;
- occlusion (Zeiler & Fergus 2014): s_t = y(x) - y(x with step t replaced by a baseline),
  the measured change, one forward pass per step (batched).

``score`` maps a batch of inputs (N, T, F) to one number per sequence (N,), e.g. the
log-probability a language model gives the next token.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Score = Callable[[Tensor], Tensor]
OCCLUSION_CELLS = 1 << 16  # occluded sequences x steps scored at once


def _check_inputs(inputs: Tensor) -> None:
    if inputs.dim() != 2 or inputs.shape[0] == 0:
        raise ValueError(f"inputs: expected (steps, features), got shape {tuple(inputs.shape)}")


def gradient_times_input(score: Score, inputs: Tensor) -> Tensor:
    """s_t (T,) for one sequence ``inputs`` (T, F)."""
    _check_inputs(inputs)
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(score(x.unsqueeze(0)).sum(), x)
    return (grad * x).sum(-1).detach()


@torch.no_grad()
def occlusion(score: Score, inputs: Tensor, baseline: Tensor | None = None) -> Tensor:
    """s_t (T,): the drop in ``score`` when step t of ``inputs`` (T, F) is replaced by
    ``baseline`` (F,) (zeros by default)."""
    _check_inputs(inputs)
    steps, features = inputs.shape
    base = torch.zeros(features, dtype=inputs.dtype) if baseline is None else baseline
    if base.shape != (features,):
        raise ValueError(f"baseline: expected shape ({features},), got {tuple(base.shape)}")
    rows = max(1, OCCLUSION_CELLS // steps)  # sequences per batch: memory stays bounded
    drops = []
    for first in range(0, steps, rows):
        t = torch.arange(first, min(first + rows, steps))
        batch = inputs.unsqueeze(0).repeat(len(t), 1, 1)  # row i occludes step t[i]
        batch[torch.arange(len(t)), t] = base
        drops.append(score(batch))
    return score(inputs.unsqueeze(0)) - torch.cat(drops)
