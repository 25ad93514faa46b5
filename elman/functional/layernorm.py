r"""Layer-normalized LSTM and GRU steps (Ba, Kiros & Hinton 2016, "Layer Normalization", §3.1).

LN(a; γ, β) = γ ⊙ (a - μ(a)) / sqrt(σ²(a) + ε) + β, over the features of one timestep. As in
the paper, the input and recurrent pre-activations are normalized separately, each over all
gates at once, and the LSTM's cell state is normalized before its output nonlinearity. The
gate LNs carry a gain only: their shift would duplicate ``b_ih``/``b_hh``, which keep torch's
names so plain LSTM/GRU weights load into these cells unchanged.

LSTM (gate order i, f, g, o):

    (i, f, g, o)_t = LN(W_ih x_t; γ_ih) + b_ih + LN(W_hh h_{t-1}; γ_hh) + b_hh
    c_t = σ(f_t) ⊙ c_{t-1} + σ(i_t) ⊙ tanh(g_t)
    h_t = σ(o_t) ⊙ tanh(LN(c_t; γ_c, β_c))

GRU (gate order r, z, n; torch's reset-after convention):

    (x_r, x_z, x_n)_t = LN(W_ih x_t; γ_ih) + b_ih
    (h_r, h_z, h_n)_t = LN(W_hh h_{t-1}; γ_hh) + b_hh
    h_t = GRU(x_t, h_r, h_z, h_n, h_{t-1})                  (see ``elman.functional.gru``)

``*_step`` takes ``xp_t = LN(W_ih x_t; γ_ih) + b_ih`` from ``layer_norm_projection``, which
depends on no state and so runs over all timesteps at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from elman.functional.gru import gru_gates
from elman.functional.lstm import lstm_gates

EPS = 1e-5


def layer_norm_projection(
    x: Tensor, w: Tensor, ln_weight: Tensor, b: Tensor | None = None, eps: float = EPS
) -> Tensor:
    """``LN(W x; γ) + b`` for ``x`` (..., I) -> (..., G*H)."""
    a = F.linear(x, w)
    y = F.layer_norm(a, (int(w.shape[0]),), ln_weight, None, eps)  # int(): static when traced
    return y if b is None else y + b


def layer_norm_lstm_step(
    xp: Tensor,
    state: tuple[Tensor, Tensor],
    w_hh: Tensor,
    ln_hh_weight: Tensor,
    ln_c_weight: Tensor,
    ln_c_bias: Tensor | None = None,
    b_hh: Tensor | None = None,
    eps: float = EPS,
) -> tuple[Tensor, Tensor]:
    """One layer-norm LSTM step: ``xp`` (B, 4H), ``(h_{t-1}, c_{t-1})`` -> ``(h_t, c_t)``."""
    h, c = state
    i, f, g, o = lstm_gates(xp + layer_norm_projection(h, w_hh, ln_hh_weight, b_hh, eps))
    c = f * c + i * g
    h = o * torch.tanh(F.layer_norm(c, (int(ln_c_weight.shape[0]),), ln_c_weight, ln_c_bias, eps))
    return h, c


def layer_norm_gru_step(
    xp: Tensor,
    h: Tensor,
    w_hh: Tensor,
    ln_hh_weight: Tensor,
    b_hh: Tensor | None = None,
    eps: float = EPS,
) -> Tensor:
    """One layer-norm GRU step: ``xp`` (B, 3H), ``h_{t-1}`` (B, H) -> ``h_t`` (B, H)."""
    return gru_gates(xp, layer_norm_projection(h, w_hh, ln_hh_weight, b_hh, eps), h)
