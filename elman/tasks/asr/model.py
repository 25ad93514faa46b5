"""The acoustic model: feature frames in, CTC log-probabilities of the symbols out.

x_t  = (f_t - μ) / σ                       features scaled by the training set's statistics
h_t  = RNN(x_t, h_{t-1})                   (bi)directional LSTM/GRU stack (Graves et al. 2013)
y_t  = log softmax(W h_t + b)              over blank + alphabet, what the CTC loss reads

Scaling by the training set's mean and deviation (buffers) instead of each utterance's own
keeps a unidirectional model streamable: a chunk's frames are scaled the same way as the
whole utterance's, so partial results equal the offline ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.tasks.awd import Regularizers, recurrent, sequence_dropout


class AcousticModel(nn.Module):
    def __init__(
        self,
        features: int,
        symbols: int,
        cell: str = "lstm",
        hidden: int = 256,
        layers: int = 3,
        bidirectional: bool = True,
        dropout: float = 0.0,
        regularizers: Regularizers | None = None,
    ) -> None:
        super().__init__()
        r = regularizers or Regularizers()
        self.register_buffer("scale_mean", torch.zeros(features))
        self.register_buffer("scale_std", torch.ones(features))
        self.rnn = recurrent(
            r, cell, features, hidden, layers, dropout, bidirectional=bidirectional
        )
        self.drop = sequence_dropout(dropout, r.locked_dropout)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), symbols)

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: Tensor | tuple | None = None
    ) -> tuple[Tensor, Tensor | tuple]:
        """``x`` (B, T, F) feature frames with (B,) ``lengths`` -> (log-probabilities (B, T, V),
        the recurrent state after the last frame, for the next chunk of a stream)."""
        z = (x - self.scale_mean) / self.scale_std
        h, state = self.rnn(z, state, lengths=lengths)
        return torch.log_softmax(self.head(self.drop(h)), dim=-1), state
