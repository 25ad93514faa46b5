r"""A BiLSTM sequence tagger with character features and an optional CRF output layer
(Huang, Xu & Yu 2015; Lample et al. 2016; Ma & Hovy 2016).

    w_t   = [E_word(lower(word_t)) ; max_j CNN(E_char(chars of word_t))_j ; e_t]   word vector
    h_t   = [h→_t ; h←_t] = BiRNN(w_1..w_n)_t
    E_t   = W h_t + b                                                         tag scores
    softmax output: p(y_t) = softmax(E_t);   CRF output: p(y) ∝ exp(s(y)) (``elman.nn.crf``)

The character CNN (width 3, max-pooled over the word) gives words never seen in training a
representation from their spelling (suffixes, capitals, digits, hyphens). e_t, optional, is the
word's contextual string embedding (Akbik et al. 2018, ``elman.tasks.tag.strings``): two frozen
character LMs' states at its ends; each part of w_t is optional but one is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.nn import embedding_dropout
from elman.nn.crf import CRF
from elman.tasks.awd import Regularizers, penalty, recurrent, sequence_dropout
from elman.tasks.tag.strings import ContextualStrings

IGNORE = -100


@dataclass(frozen=True)
class TagBatch:
    """words (B, T) ids, chars (B, T, L) ids, lengths (B,), tags (B, T) with ``IGNORE`` on
    padding (or None), index (B,) the rows' positions in the data set, and for a tagger with
    contextual string embeddings the words' features strings (B, T, H_f + H_b)."""

    words: Tensor
    chars: Tensor
    lengths: Tensor
    tags: Tensor | None
    index: Tensor
    strings: Tensor | None = None

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
    """Word (+ character) (+ contextual string) embeddings -> BiRNN -> per-step tag scores ->
    softmax or CRF. ``word_embedding`` 0: no word embeddings (only beside ``strings``)."""

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
        regularizers: Regularizers | None = None,
        strings: ContextualStrings | None = None,
    ) -> None:
        super().__init__()
        r = self.regularizers = regularizers or Regularizers()
        self.embed = nn.Embedding(words, word_embedding, padding_idx=0) if word_embedding else None
        self.chars = CharCNN(chars, char_embedding, char_filters) if char_filters else None
        size = word_embedding + (char_filters or 0) + (strings.size if strings is not None else 0)
        if not size:
            raise ValueError(
                "word_embedding: 0 leaves the tagger no input (no character CNN, no contextual "
                "string embeddings); expected word embeddings or another word feature"
            )
        self.drop = sequence_dropout(dropout, r.locked_dropout)
        self.rnn = recurrent(r, cell, size, hidden, layers, dropout, bidirectional=True)
        self.emit = nn.Linear(2 * hidden, tags)
        self.crf = CRF(tags) if crf else None
        self.strings = strings  # frozen; registered last: the other parameters keep their order

    def emissions(self, batch: TagBatch) -> Tensor:
        """Tag scores (B, T, K)."""
        return self._emissions(batch)[0]

    def _emissions(self, batch: TagBatch) -> tuple[Tensor, Tensor]:
        """Tag scores (B, T, K) and the AR/TAR penalty (zero in evaluation or when off)."""
        r = self.regularizers
        parts = []
        if self.embed is not None:
            parts.append(embedding_dropout(self.embed, batch.words, r.token_dropout, self.training))
        if self.chars is not None:
            parts.append(self.chars(batch.chars))
        if self.strings is not None:
            parts.append(self._strings(batch))
        w = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        raw, _ = self.rnn(self.drop(w), lengths=batch.lengths)
        h = self.drop(raw)
        extra = raw.new_zeros(())
        if self.training and (r.ar or r.tar):
            extra = penalty(h, raw, r.ar, r.tar, batch.mask.to(raw.device))
        return self.emit(h), extra

    def _strings(self, batch: TagBatch) -> Tensor:
        """The batch's contextual string features (B, T, H_f + H_b), computed beforehand from
        the words' text (``ContextualStrings``), which the ids no longer hold."""
        if batch.strings is None:
            raise ValueError(
                "batch: this tagger reads contextual string embeddings, but the batch has no "
                "strings features; encode sentences with encode_sentences(..., strings="
                "model.strings) (elman.tasks.tag.data)"
            )
        return batch.strings.to(self.emit.weight.dtype)

    def forward(self, batch: TagBatch) -> tuple[Tensor, int, Tensor]:
        """The training loss (``loss``): data-parallel training needs it to be ``forward``."""
        return self.loss(batch)

    def loss(self, batch: TagBatch) -> tuple[Tensor, int, Tensor]:
        """(Mean nats per tagged token + the AR/TAR penalty, the token count, the nats)."""
        e, extra = self._emissions(batch)
        tokens = int(batch.lengths.sum())
        if self.crf is None:
            nats = F.cross_entropy(e.reshape(-1, e.shape[-1]), batch.tags.reshape(-1))
        else:
            nats = self.crf(e, batch.tags, batch.mask).sum() / tokens
        return nats + extra, tokens, nats

    def decode(self, batch: TagBatch) -> list[list[int]]:
        """The best tag sequence of each row (Viterbi with a CRF, else per-step argmax)."""
        e = self.emissions(batch)
        if self.crf is not None:
            return self.crf.decode(e, batch.mask)
        best = e.argmax(-1)
        return [best[b, :n].tolist() for b, n in enumerate(batch.lengths.tolist())]
