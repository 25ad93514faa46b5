"""Many-to-one models: a (bi)RNN encoder, a pooling choice and a classifier; optionally an
LSTM-FCN style convolutional branch beside the recurrent one for numeric series.

text:    ids (B, T) -> word dropout -> embedding -> dropout -> RNN -> pool -> dropout -> linear
         -> logits (B, K)
series:  x (B, T, C) -> scale -> RNN -> pool ─┐
                     └-> conv blocks -> GAP ──┴ concat -> dropout -> linear -> logits

The convolutional branch follows LSTM-FCN (Karim et al. 2017, after Wang et al. 2017's FCN):
three blocks Conv1d -> BatchNorm -> ReLU with 128/256/128 filters of widths 8/5/3, then global
average pooling over the real (unpadded) steps. Series are scaled per channel with the mean
and standard deviation of the training data (stored as buffers); missing values (NaN) become
0 after scaling, i.e. the training mean.

Word dropout (Iyyer et al. 2015; Bowman et al. 2016) replaces each training token by ``<unk>``
with a given probability: small text sets otherwise never show the model ``<unk>``, which is
what every unseen word becomes at test time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.data.tokenize import PAD_ID, UNK_ID
from elman.functional.attention import lengths_to_mask
from elman.nn import embedding_dropout
from elman.nn.pooling import Pooling
from elman.tasks.awd import Regularizers, penalty, recurrent, sequence_dropout

FCN_BLOCKS = ((128, 8), (256, 5), (128, 3))


class ConvBranch(nn.Module):
    """FCN blocks over (B, T, C) with padding masked out; returns (B, 128)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for filters, width in FCN_BLOCKS:
            left = (width - 1) // 2  # "same" length; explicit, since even widths pad unevenly
            layers.append(nn.ConstantPad1d((left, width - 1 - left), 0.0))
            layers.append(nn.Conv1d(channels, filters, width))
            layers.append(nn.BatchNorm1d(filters))
            layers.append(nn.ReLU())
            channels = filters
        self.blocks = nn.ModuleList(layers)
        self.size = channels

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        mask = lengths_to_mask(lengths.to(x.device), x.shape[1]).unsqueeze(1)  # (B, 1, T)
        h = x.transpose(1, 2) * mask  # (B, C, T)
        for layer in self.blocks:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                h = h * mask  # padding stays zero, so it never leaks into later convolutions
        return h.sum(2) / mask.sum(2)


class SequenceClassifier(nn.Module):
    """``vocab_size`` for text input (ids), else ``channels`` for numeric series (B, T, C)."""

    def __init__(
        self,
        classes: int,
        cell: str,
        hidden: int,
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        pooling: str = "last",
        vocab_size: int | None = None,
        embedding: int = 128,
        channels: int | None = None,
        conv: bool = False,
        embed_dropout: float = 0.0,
        word_dropout: float = 0.0,
        regularizers: Regularizers | None = None,
    ) -> None:
        super().__init__()
        if (vocab_size is None) == (channels is None):
            raise ValueError("give exactly one of vocab_size (text) and channels (series)")
        r = self.regularizers = regularizers or Regularizers()
        self.embed = None if vocab_size is None else nn.Embedding(vocab_size, embedding, 0)
        self.embed_drop = sequence_dropout(embed_dropout, r.locked_dropout)
        self.word_dropout = word_dropout
        size = embedding if channels is None else channels
        if channels is not None:
            self.register_buffer("scale_mean", torch.zeros(channels))
            self.register_buffer("scale_std", torch.ones(channels))
        self.rnn = recurrent(r, cell, size, hidden, layers, dropout, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.pool = Pooling(pooling, hidden * directions, directions)
        self.conv = ConvBranch(size) if conv else None
        # locked: the encoder's outputs get one mask per sequence (AWD's output dropout)
        # instead of the pooled vector getting a plain one
        self.out_drop = sequence_dropout(dropout, True) if r.locked_dropout else None
        self.drop = nn.Identity() if r.locked_dropout else nn.Dropout(dropout)
        features = self.pool.out_size + (self.conv.size if self.conv else 0)
        self.head = nn.Linear(features, classes)

    def inputs(self, x: Tensor) -> Tensor:
        """Embedded ids, or scaled series with missing values filled."""
        if self.embed is not None:
            if self.training and self.word_dropout > 0:
                drop = torch.rand(x.shape, device=x.device) < self.word_dropout
                x = torch.where(drop & (x != PAD_ID), UNK_ID, x)
            e = embedding_dropout(self.embed, x, self.regularizers.token_dropout, self.training)
            return self.embed_drop(e)
        z = (x - self.scale_mean) / self.scale_std
        return torch.nan_to_num(z, nan=0.0)

    # with_penalty is positional, not keyword-only: torch's ONNX exporter passes defaults so
    def forward(self, x: Tensor, lengths: Tensor, with_penalty: bool = False):
        """Logits (B, K) for ``x`` (B, T) ids or (B, T, C) values, with (B,) ``lengths``;
        ``with_penalty``: (logits, the AR/TAR penalty on the encoder's outputs), computed here
        so that data-parallel training sees it in ``forward`` (zero in evaluation)."""
        h = self.inputs(x)
        raw, _ = self.rnn(h, lengths=lengths)
        outputs = raw if self.out_drop is None else self.out_drop(raw)
        features = self.pool(outputs, lengths)
        if self.conv is not None:
            features = torch.cat([features, self.conv(h, lengths)], dim=-1)
        logits = self.head(self.drop(features))
        if not with_penalty:
            return logits
        r, extra = self.regularizers, raw.new_zeros(())
        if self.training and (r.ar or r.tar):
            mask = lengths_to_mask(lengths.to(raw.device), raw.shape[1])
            extra = penalty(outputs, raw, r.ar, r.tar, mask)
        return logits, extra
