r"""Elman recurrent step (Elman 1990, "Finding structure in time").

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)        (tanh)
    h_t = max(0, W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (relu; Le et al. 2015, IRNN)

``*_step`` takes ``xp_t = W_ih x_t + b_ih`` already computed, so a layer can hoist the
input projection of all timesteps into one matrix product before its time loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rnn_tanh_step(xp: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None = None) -> Tensor:
    """One tanh-RNN step from the input projection ``xp`` (B, H) and ``h_{t-1}`` (B, H)."""
    return torch.tanh(xp + F.linear(h, w_hh, b_hh))


def rnn_relu_step(xp: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None = None) -> Tensor:
    """One ReLU-RNN step from the input projection ``xp`` (B, H) and ``h_{t-1}`` (B, H)."""
    return torch.relu(xp + F.linear(h, w_hh, b_hh))


def rnn_tanh_cell(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    """``h_t`` from ``x_t`` (B, I) and ``h_{t-1}`` (B, H), as ``torch.nn.RNNCell(tanh)``."""
    return rnn_tanh_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)


def rnn_relu_cell(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    """``h_t`` from ``x_t`` (B, I) and ``h_{t-1}`` (B, H), as ``torch.nn.RNNCell(relu)``."""
    return rnn_relu_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)
