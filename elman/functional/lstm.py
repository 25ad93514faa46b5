r"""Long short-term memory step (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000).

Gate order is torch's: the 4H rows of ``W_ih``/``W_hh`` hold i, f, g, o.

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)
    h_t = W_hr h_t                                   (only with projections; Sak et al. 2014)

``lstm_step`` takes ``xp_t = W_ih x_t + b_ih`` already computed (hoisted out of the time loop).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def lstm_gates(pre: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(i, f, g, o)`` after their nonlinearities from the pre-activations (..., 4H)."""
    i, f, g, o = pre.chunk(4, dim=-1)
    return torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)


def lstm_step(
    xp: Tensor,
    state: tuple[Tensor, Tensor],
    w_hh: Tensor,
    b_hh: Tensor | None = None,
    w_hr: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step: ``xp`` (B, 4H), ``state = (h_{t-1}, c_{t-1})`` -> ``(h_t, c_t)``."""
    h, c = state
    i, f, g, o = lstm_gates(xp + F.linear(h, w_hh, b_hh))
    c = f * c + i * g
    h = o * torch.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)
    return h, c


def lstm_cell(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``(h_t, c_t)`` from ``x_t`` (B, I) and ``(h_{t-1}, c_{t-1})``, as ``torch.nn.LSTMCell``."""
    return lstm_step(F.linear(x, w_ih, b_ih), state, w_hh, b_hh)
