r"""A BiLSTM sequence tagger with character features and an optional CRF output layer
(Huang, Xu & Yu 2015; Lample et al. 2016; Ma & Hovy 2016).

    w_t   = [E_word(lower(word_t)) ; max_j CNN(E_char(chars of word_t))_j]   word vector
    h_t   = [h→_t ; h←_t] = BiRNN(w_1..w_n)_t
    E_t   = W h_t + b                                                         tag scores
    softmax output: p(y_t) = softmax(E_t);   CRF output: p(y) ∝ exp(s(y)) (``elman.nn.crf``)

The character CNN (width 3, max-pooled over the word) gives words never seen in training a
representation from their spelling (suffixes, capitals, digits, hyphens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.nn import build_recurrent
from elman.nn.crf import CRF

IGNORE = -100


@dataclass(frozen=True)
class TagBatch:
    """words (B, T) ids, chars (B, T, L) ids, lengths (B,), tags (B, T) with ``IGNORE`` on
    padding (or None), index (B,) the rows' positions in the data set."""

    words: Tensor
    chars: Tensor
    lengths: Tensor
    tags: Tensor | None
    index: Tensor

    @property
    def mask(self) -> Tensor:
        return (
            torch.arange(self.words.shape[1], device=self.lengths.device)[None, :]
            < self.lengths[:, None]
        )


class CharCNN(nn.Module):
    """(..., L) character ids of words -> (..., filters) features (0 = padding)."""

    def __init__(self, chars: int, embedding: int, filters: int, width: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(chars, embedding, padding_idx=0)
        self.conv = nn.Conv1d(embedding, filters, width, padding=width // 2)
        self.size = filters

    def forward(self, chars: Tensor) -> Tensor:
        shape = chars.shape[:-1]
        flat = chars.reshape(-1, chars.shape[-1])  # (N, L)
        h = self.conv(self.embed(flat).transpose(1, 2))  # (N, F, L)
        h = h.masked_fill((flat == 0).unsqueeze(1), float("-inf")).max(dim=2).values
        h = torch.where(torch.isinf(h), torch.zeros_like(h), h)  # padding words: no characters
        return h.view(*shape, self.size)


class Tagger(nn.Module):
    """Word (+ character) embeddings -> BiRNN -> per-step tag scores -> softmax or CRF."""

    def __init__(
        self,
        words: int,
        chars: int,
        tags: int,
        cell: str = "lstm",
        word_embedding: int = 100,
        char_embedding: int = 25,
        char_filters: int = 50,
        hidden: int = 128,
        layers: int = 1,
        dropout: float = 0.5,
        crf: bool = True,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(words, word_embedding, padding_idx=0)
        self.chars = CharCNN(chars, char_embedding, char_filters) if char_filters else None
        size = word_embedding + (char_filters if char_filters else 0)
        self.drop = nn.Dropout(dropout)
        self.rnn = build_recurrent(
            cell, size, hidden, layers, dropout if layers > 1 else 0.0, bidirectional=True
        )
        self.emit = nn.Linear(2 * hidden, tags)
        self.crf = CRF(tags) if crf else None

    def emissions(self, batch: TagBatch) -> Tensor:
        """Tag scores (B, T, K)."""
        w = self.embed(batch.words)
        if self.chars is not None:
            w = torch.cat([w, self.chars(batch.chars)], dim=-1)
        h, _ = self.rnn(self.drop(w), lengths=batch.lengths)
        return self.emit(self.drop(h))

    def forward(self, batch: TagBatch) -> tuple[Tensor, int]:
        """The training loss (``loss``): data-parallel training needs it to be ``forward``."""
        return self.loss(batch)

    def loss(self, batch: TagBatch) -> tuple[Tensor, int]:
        """Mean nats per tagged token, and the token count."""
        e = self.emissions(batch)
        tokens = int(batch.lengths.sum())
        if self.crf is None:
            return F.cross_entropy(e.reshape(-1, e.shape[-1]), batch.tags.reshape(-1)), tokens
        return self.crf(e, batch.tags, batch.mask).sum() / tokens, tokens

    def decode(self, batch: TagBatch) -> list[list[int]]:
        """The best tag sequence of each row (Viterbi with a CRF, else per-step argmax)."""
        e = self.emissions(batch)
        if self.crf is not None:
            return self.crf.decode(e, batch.mask)
        best = e.argmax(-1)
        return [best[b, :n].tolist() for b, n in enumerate(batch.lengths.tolist())]
