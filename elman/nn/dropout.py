"""The AWD-LSTM dropouts outside the recurrent weights (Merity, Keskar & Socher 2017,
"Regularizing and Optimizing LSTM Language Models"; Gal & Ghahramani 2016).

Locked (variational) dropout: one mask per sequence and feature, shared by every step::

    m_{b,f} ~ Bernoulli(1 - p)                     one draw per call, (1, B, F) or (B, 1, F)
    y_{t,b,f} = m_{b,f} * x_{t,b,f} / (1 - p)      the same m at every step t

Embedding dropout: whole rows of the embedding matrix E (V, F) dropped, so a dropped word is
zero wherever it occurs in the call::

    m_v ~ Bernoulli(1 - p)                         one draw per vocabulary entry per call
    E'_v = m_v * E_v / (1 - p)
    y_i = E'_{ids_i}

Both are the identity (plain ``embed(ids)``) in evaluation or with p = 0, and preserve the
expectation in training. The third AWD dropout, DropConnect on W_hh, is the recurrent layers'
``weight_dropout``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence


def _check_rate(p: object) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise ValueError(f"p must be a number in [0, 1), got {p!r}")
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    return float(p)


def _keep_mask(like: Tensor, shape: tuple[int, ...], p: float) -> Tensor:
    """m / (1 - p) with m ~ Bernoulli(1 - p), of ``shape``, ``like``'s dtype and device."""
    return like.new_empty(shape).bernoulli_(1 - p).div_(1 - p)


def locked_mask(x: Tensor, p: float) -> Tensor:
    """The keep mask (1, B, F) / (1 - p) of time-major ``x`` (T, B, F): one draw per sequence
    and feature, broadcast over time."""
    return _keep_mask(x, (1, *x.shape[1:]), p)


class LockedDropout(nn.Module):
    """Variational dropout over time: one mask per sequence and feature, at every step.

    p: the drop rate, in [0, 1).
    batch_first: inputs are (B, T, F) instead of (T, B, F).

    Input: (T, B, F) or (B, T, F) if batch_first, (T, F) for one sequence, or a
    PackedSequence (each sequence keeps one mask over its steps). Padded batches need no
    ``lengths``: padding is masked like any step and stays what it was where it was zero.
    Output: the same shape (a PackedSequence for packed input).
    """

    def __init__(self, p: float = 0.5, batch_first: bool = False) -> None:
        super().__init__()
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first must be True or False, got {batch_first!r}")
        self.p = _check_rate(p)
        self.batch_first = batch_first

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", batch_first=True" if self.batch_first else "")

    def forward(self, x: Tensor | PackedSequence) -> Tensor | PackedSequence:
        if isinstance(x, PackedSequence):
            return self._packed(x)
        if not isinstance(x, Tensor):
            raise TypeError(f"LockedDropout takes a Tensor or PackedSequence, got {type(x)}")
        if x.dim() not in (2, 3):
            raise ValueError(
                "LockedDropout needs (T, B, F), (B, T, F) if batch_first, or (T, F); "
                f"got shape {tuple(x.shape)}"
            )
        if not self.training or self.p == 0:
            return x
        if x.dim() == 2:
            return x * _keep_mask(x, (1, x.shape[1]), self.p)  # (1, F)
        b, f = (x.shape[0], x.shape[2]) if self.batch_first else (x.shape[1], x.shape[2])
        shape = (b, 1, f) if self.batch_first else (1, b, f)
        return x * _keep_mask(x, shape, self.p)

    def _packed(self, x: PackedSequence) -> PackedSequence:
        if not self.training or self.p == 0:
            return x
        sizes = x.batch_sizes.tolist()
        mask = _keep_mask(x.data, (sizes[0], x.data.shape[-1]), self.p)  # (B, F), sorted order
        rows = torch.cat([torch.arange(n) for n in sizes]).to(x.data.device)  # packed row -> b
        return PackedSequence(
            x.data * mask[rows], x.batch_sizes, x.sorted_indices, x.unsorted_indices
        )


def embedding_dropout(embed: nn.Embedding, ids: Tensor, p: float, training: bool) -> Tensor:
    """``embed(ids)`` with whole rows of ``embed.weight`` dropped (one draw per vocabulary
    entry per call) and the kept rows scaled by 1 / (1 - p); ``embed(ids)`` itself when not
    ``training`` or p == 0.

    ``padding_idx`` gets no gradient and ``scale_grad_by_freq`` holds, as in ``F.embedding``;
    with ``max_norm`` the looked-up rows of ``embed.weight`` are renormalised in place first,
    as ``embed(ids)`` does, and the mask applies after. ids: any shape of integer indices;
    returns (*ids.shape, F). Sparse embeddings are refused in training (the mask's product
    has no sparse gradient).
    """
    if not isinstance(embed, nn.Embedding):
        raise TypeError(f"embed must be an nn.Embedding, got {type(embed).__name__}")
    p = _check_rate(p)
    if not training or p == 0:
        return embed(ids)
    if embed.sparse:
        raise ValueError("embedding_dropout needs an nn.Embedding with sparse=False in training")
    if embed.max_norm is not None:
        with torch.no_grad():
            torch.embedding_renorm_(embed.weight, ids, embed.max_norm, embed.norm_type)
    w = embed.weight
    dropped = w * _keep_mask(w, (w.shape[0], 1), p)  # (V, F), whole rows zero
    return F.embedding(
        ids, dropped, embed.padding_idx, None, embed.norm_type, embed.scale_grad_by_freq
    )
