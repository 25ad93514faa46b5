"""Attention modules over encoder outputs: additive (Bahdanau) and multiplicative (Luong).

Each returns the context and the weights, so decoders can feed the context on and plots can
show the alignment. See ``elman.functional.attention`` for the equations.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from elman.functional.attention import (
    additive_scores,
    dot_scores,
    general_scores,
    masked_softmax,
)
from elman.nn.checks import check_positive_int, check_size, check_tensor


class AttentionOutput(NamedTuple):
    """``context`` (B, Tq, Hv) and ``weights`` (B, Tq, Tk); without Tq for a 2-D query."""

    context: Tensor
    weights: Tensor


class Attention(nn.Module):
    """Base: validates inputs, scores them with ``score`` and weights the values."""

    query_size: int | None = None
    key_size: int | None = None

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        """Scores (B, Tq, Tk) for queries (B, Tq, Hq) and keys (B, Tk, Hk)."""
        raise NotImplementedError

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor | None = None, mask: Tensor | None = None
    ) -> AttentionOutput:
        """query (B, Hq) or (B, Tq, Hq); keys (B, Tk, Hk); values (B, Tk, Hv), default keys;
        mask (B, Tk) bool, True where a key may be attended (e.g. not padding)."""
        q = check_tensor("query", query, (2, 3), "(B, Hq) or (B, Tq, Hq)")
        k = check_tensor("keys", keys, (3,), "(B, Tk, Hk)")
        v = k if values is None else check_tensor("values", values, (3,), "(B, Tk, Hv)")
        single = q.dim() == 2
        q = q.unsqueeze(1) if single else q
        if self.query_size is not None:
            check_size("query", q, -1, self.query_size, "query_size")
        if self.key_size is not None:
            check_size("keys", k, -1, self.key_size, "key_size")
        for name, t in (("keys", k), ("values", v)):
            check_size(name, t, 0, q.shape[0], "the query's batch size")
        check_size("values", v, 1, k.shape[1], "the keys' length Tk")
        if mask is not None and (mask.dtype != torch.bool or mask.shape != k.shape[:2]):
            raise ValueError(
                f"mask: expected a bool tensor of shape (B, Tk) = {tuple(k.shape[:2])}, got "
                f"{mask.dtype} of shape {tuple(mask.shape)}"
            )
        weights = masked_softmax(self.score(q, k), mask)
        context = weights @ v
        if single:
            return AttentionOutput(context.squeeze(1), weights.squeeze(1))
        return AttentionOutput(context, weights)


class AdditiveAttention(Attention):
    """Bahdanau attention: e_ij = v^T tanh(W_q q_i + W_k k_j + b)."""

    def __init__(
        self,
        query_size: int,
        key_size: int,
        attention_size: int | None = None,
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        size = attention_size or key_size
        for name, value in (
            ("query_size", query_size),
            ("key_size", key_size),
            ("attention_size", size),
        ):
            check_positive_int(name, value)
        self.query_size, self.key_size, self.attention_size = query_size, key_size, size
        f = {"device": device, "dtype": dtype}
        self.w_query = nn.Parameter(torch.empty(size, query_size, **f))
        self.w_key = nn.Parameter(torch.empty(size, key_size, **f))
        self.bias = nn.Parameter(torch.empty(size, **f))
        self.v = nn.Parameter(torch.empty(size, **f))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights, zero bias, v uniform ±1/sqrt(A)."""
        nn.init.xavier_uniform_(self.w_query)
        nn.init.xavier_uniform_(self.w_key)
        nn.init.zeros_(self.bias)
        nn.init.uniform_(
            self.v, -1 / math.sqrt(self.attention_size), 1 / math.sqrt(self.attention_size)
        )

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        return additive_scores(q, k, self.w_query, self.w_key, self.v, self.bias)


class DotAttention(Attention):
    """Luong dot attention: e_ij = q_i . k_j (divided by sqrt(H) when ``scaled``)."""

    def __init__(self, scaled: bool = False) -> None:
        super().__init__()
        self.scaled = scaled

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        check_size("keys", k, -1, q.shape[-1], "the query's size: dot attention needs Hq == Hk")
        return dot_scores(q, k, self.scaled)


class GeneralAttention(Attention):
    """Luong general (bilinear) attention: e_ij = q_i^T W k_j."""

    def __init__(self, query_size: int, key_size: int, *, device=None, dtype=None) -> None:
        super().__init__()
        for name, value in (("query_size", query_size), ("key_size", key_size)):
            check_positive_int(name, value)
        self.query_size, self.key_size = query_size, key_size
        self.weight = nn.Parameter(torch.empty(query_size, key_size, device=device, dtype=dtype))
        nn.init.xavier_uniform_(self.weight)

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        return general_scores(q, k, self.weight)
