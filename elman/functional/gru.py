r"""Gated recurrent unit step (Cho et al. 2014), in torch's convention.

Gate order is torch's: the 3H rows of ``W_ih``/``W_hh`` hold r, z, n. Torch applies the reset
gate after the recurrent product (``r ⊙ (W_hn h + b_hn)``), and so does this step.

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

``gru_step`` takes ``xp_t = W_ih x_t + b_ih`` already computed (hoisted out of the time loop).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gru_gate_values(xp: Tensor, hp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(r, z, n)`` from input projection ``xp`` and recurrent projection ``hp`` (..., 3H)."""
    xr, xz, xn = xp.chunk(3, dim=-1)
    hr, hz, hn = hp.chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return r, z, n


def gru_gates(xp: Tensor, hp: Tensor, h: Tensor) -> Tensor:
    """``h_t`` from input projection ``xp`` (B, 3H), recurrent projection ``hp`` (B, 3H), ``h``."""
    _, z, n = gru_gate_values(xp, hp)
    return (1 - z) * n + z * h


def gru_step(xp: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None = None) -> Tensor:
    """One GRU step: ``xp`` (B, 3H), ``h_{t-1}`` (B, H) -> ``h_t`` (B, H)."""
    return gru_gates(xp, F.linear(h, w_hh, b_hh), h)


def gru_cell(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    """``h_t`` from ``x_t`` (B, I) and ``h_{t-1}`` (B, H), as ``torch.nn.GRUCell``."""
    return gru_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)
