"""Contiguous batches for truncated backpropagation through time (TBPTT).

A token sequence is laid out as B rows of equal length (row b holds one contiguous slice), and
chunk i holds steps [i*k, (i+1)*k) of every row. Row b of chunk i+1 continues row b of chunk
i, so a model can carry its hidden state from one chunk to the next and detach it in between:
gradients flow back at most k steps, while the state sees the whole history.

    tokens:  a b c d e f g h i j k l m n o p q r s t u v w x y
    rows:    [a b c d e f g h i j k l]      B = 2, k = 4: chunk 0 = [a b c d], [m n o p]
             [m n o p q r s t u v w x]                    chunk 1 = [e f g h], [q r s t]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Chunk:
    """Inputs ``x`` and next-token targets ``y`` (B, k); ``starts`` (B, k) marks where a new
    document begins (the state must be reset before that step), or None if nowhere."""

    x: Tensor
    y: Tensor
    starts: Tensor | None


class TokenStream:
    """A token sequence as ``batch_size`` parallel rows cut into chunks of ``seq_len`` steps.

    tokens: (N,) int64. doc_starts: positions where documents begin (position 0 needs none).
    rows: the slice of the B rows this process sees (data-parallel ranks split the rows).
    full_chunks_only: drop a last chunk shorter than ``seq_len`` (training); keep it to cover
        every token (evaluation).
    """

    def __init__(
        self,
        tokens: Tensor,
        batch_size: int,
        seq_len: int,
        doc_starts: Tensor | None = None,
        rows: slice = slice(None),
        full_chunks_only: bool = True,
    ) -> None:
        if tokens.dim() != 1:
            raise ValueError(f"tokens: expected a 1-D tensor, got shape {tuple(tokens.shape)}")
        row_len = (tokens.numel() - 1) // batch_size
        need = seq_len if full_chunks_only else 1
        if row_len < need:
            raise ValueError(
                f"corpus too short: {tokens.numel()} tokens cannot fill one batch "
                f"of {batch_size} rows x {need} steps (needs at least "
                f"{batch_size * need + 1}); use a longer text or a smaller "
                "batch size / sequence length"
            )
        used = batch_size * row_len
        self.x = tokens[:used].view(batch_size, row_len)[rows]
        self.y = tokens[1 : used + 1].view(batch_size, row_len)[rows]
        self.starts = None
        if doc_starts is not None and doc_starts.numel():
            flags = torch.zeros(tokens.numel(), dtype=torch.bool)
            flags[doc_starts[doc_starts < tokens.numel()]] = True
            self.starts = flags[:used].view(batch_size, row_len)[rows]
        self.seq_len = seq_len
        whole, rest = divmod(row_len, seq_len)
        self.n_chunks = whole + (1 if rest and not full_chunks_only else 0)

    def __len__(self) -> int:
        return self.n_chunks

    @property
    def tokens_per_pass(self) -> int:
        """Targets seen in one pass over every chunk (this process's rows)."""
        return self.y.shape[0] * min(self.y.shape[1], self.n_chunks * self.seq_len)

    def __getitem__(self, i: int) -> Chunk:
        if not 0 <= i < self.n_chunks:
            raise IndexError(f"chunk {i} out of range 0..{self.n_chunks - 1}")
        cols = slice(i * self.seq_len, (i + 1) * self.seq_len)
        starts = None
        if self.starts is not None:
            s = self.starts[:, cols]
            starts = s if bool(s.any()) else None
        return Chunk(self.x[:, cols], self.y[:, cols], starts)
