r"""Pooling a recurrent encoder's outputs (B, T, D*H) into one vector per sequence, padding
excluded.

    last       h = [h→_n ; h←_1]              the forward direction's state at the row's last
                                              step, the backward direction's at its first
    mean       h = (1/n) Σ_{t≤n} h_t
    max        h = max_{t≤n} h_t               (per feature)
    attention  e_t = v^T tanh(W h_t + b),  α = softmax_{t≤n}(e),  h = Σ_t α_t h_t
                                              (Yang et al. 2016; Lin et al. 2017)
    concat     h = [last ; max ; mean]          three times as wide (ULMFiT's concat pooling,
                                              Howard & Ruder 2018)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.functional.attention import lengths_to_mask, masked_softmax

POOLINGS = ("last", "mean", "max", "attention", "concat")
PARTS = ("last", "max", "mean")  # what concat joins, in ULMFiT's order


class Pooling(nn.Module):
    """``kind`` one of ``POOLINGS``; ``size`` the encoder's output width D*H; ``directions``
    D (1 or 2; "last" takes each direction's own final step)."""

    def __init__(self, kind: str, size: int, directions: int = 1) -> None:
        super().__init__()
        if kind not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {kind!r}")
        if directions not in (1, 2) or size % directions:
            raise ValueError(f"directions must be 1 or 2 and divide size {size}, got {directions}")
        self.kind, self.size, self.directions = kind, size, directions
        if kind == "attention":
            self.project = nn.Linear(size, size)
            self.v = nn.Linear(size, 1, bias=False)
        self.weights: Tensor | None = None  # the last attention weights (B, T), for insight

    @property
    def out_size(self) -> int:
        """The width of the pooled vector."""
        return 3 * self.size if self.kind == "concat" else self.size

    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, size) outputs and (B,) lengths -> (B, size)."""
        mask = lengths_to_mask(lengths.to(outputs.device), outputs.shape[1])  # (B, T)
        if self.kind == "concat":
            return torch.cat([self._pool(k, outputs, lengths, mask) for k in PARTS], dim=-1)
        return self._pool(self.kind, outputs, lengths, mask)

    def _pool(self, kind: str, outputs: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
        if kind == "last":
            rows = torch.arange(outputs.shape[0], device=outputs.device)
            forward = outputs[rows, lengths - 1, : self.size // self.directions]
            if self.directions == 1:
                return forward
            return torch.cat([forward, outputs[:, 0, self.size // 2 :]], dim=-1)
        if kind == "mean":
            m = mask.unsqueeze(2).to(outputs.dtype)
            return (outputs * m).sum(1) / m.sum(1)
        if kind == "max":
            return outputs.masked_fill(~mask.unsqueeze(2), float("-inf")).max(dim=1).values
        if kind == "attention":
            e = self.v(torch.tanh(self.project(outputs))).squeeze(2)  # (B, T)
            alpha = masked_softmax(e.unsqueeze(1), mask).squeeze(1)  # (B, T)
            self.weights = alpha.detach()
            return (alpha.unsqueeze(2) * outputs).sum(1)
        raise ValueError(f"unknown pooling {kind!r}")
