r"""Attention scores and masked weighting for encoder-decoder models.

For a query q_i (decoder state) and keys k_j (encoder outputs):

    e_ij = v^T tanh(W_q q_i + W_k k_j + b)          additive (Bahdanau, Cho & Bengio 2014)
    e_ij = q_i^T k_j                                dot (Luong, Pham & Manning 2015)
    e_ij = q_i^T k_j / sqrt(d)                      scaled dot (Vaswani et al. 2017)
    e_ij = q_i^T W k_j                              general (Luong et al. 2015)
    α_ij = exp(e_ij) / Σ_{j' unmasked} exp(e_ij')   0 where j is masked
    c_i  = Σ_j α_ij v_j

Shapes: queries (B, Tq, Hq), keys (B, Tk, Hk), values (B, Tk, Hv), mask (B, Tk) with True
where a key may be attended, scores and weights (B, Tq, Tk), contexts (B, Tq, Hv).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def additive_scores(
    q: Tensor, k: Tensor, w_q: Tensor, w_k: Tensor, v: Tensor, b: Tensor | None = None
) -> Tensor:
    """Bahdanau scores; ``w_q`` (A, Hq), ``w_k`` (A, Hk), ``v`` (A,), ``b`` (A,)."""
    qp = F.linear(q, w_q)  # (B, Tq, A)
    kp = F.linear(k, w_k, b)  # (B, Tk, A)
    return torch.tanh(qp.unsqueeze(2) + kp.unsqueeze(1)) @ v  # (B, Tq, Tk)


def dot_scores(q: Tensor, k: Tensor, scaled: bool = False) -> Tensor:
    """Luong dot scores, divided by sqrt(Hk) when ``scaled``; needs Hq == Hk."""
    e = q @ k.transpose(1, 2)
    return e / math.sqrt(k.shape[-1]) if scaled else e


def general_scores(q: Tensor, k: Tensor, w: Tensor) -> Tensor:
    """Luong general scores with ``w`` (Hq, Hk)."""
    return (q @ w) @ k.transpose(1, 2)


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last axis where ``mask`` (B, Tk) is True; a row with none gets zeros."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    keep = mask.unsqueeze(1)  # (B, 1, Tk)
    w = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
    return w.masked_fill(~keep, 0.0)  # also turns the NaNs of all-masked rows into zeros


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True at positions before each length."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
