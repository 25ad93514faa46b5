"""Batches of variable-length sequences: padding with lengths, and bucketing by length.

Sequences of one batch are padded to the longest one, and their true ``lengths`` travel with
them, so the recurrent layers stop each row at its length and losses skip the padding.
Bucketing groups sequences of similar length into the same batch, so little padding is
computed at all: indices are shuffled, cut into pools of ``pool`` batches, sorted by length
inside each pool, cut into batches, and the batches shuffled again (as torchtext's
BucketIterator and fairseq do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PaddedBatch:
    """``x`` (B, T, ...) padded inputs, ``lengths`` (B,) int64, ``y`` the targets: (B,) for
    one label per sequence, (B, T) for one per step (padding holds ``ignore_index``), or
    None; ``index`` (B,) the positions of the rows in the data set."""

    x: Tensor
    lengths: Tensor
    y: Tensor | None
    index: Tensor

    @property
    def mask(self) -> Tensor:
        """(B, T) bool, True at real (non-padding) steps."""
        return (
            torch.arange(self.x.shape[1], device=self.lengths.device)[None, :]
            < self.lengths[:, None]
        )


def pad(sequences: Sequence[Tensor], value: float | int = 0) -> tuple[Tensor, Tensor]:
    """Stack (T_i, ...) tensors into (B, max T_i, ...) filled with ``value``, and (B,) lengths."""
    if not sequences:
        raise ValueError("sequences: expected at least one sequence to pad, got none")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    if int(lengths.min()) < 1:
        empty = int((lengths < 1).nonzero()[0])
        raise ValueError(f"sequences: sequence {empty} is empty; every sequence needs a step")
    first = sequences[0]
    out = first.new_full((len(sequences), int(lengths.max()), *first.shape[1:]), value)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out, lengths


def collate(
    inputs: Sequence[Tensor],
    index: Sequence[int],
    labels: Tensor | Sequence[Tensor] | None = None,
    ignore_index: int = -100,
) -> PaddedBatch:
    """The padded batch of rows ``index``: per-sequence labels come as one tensor (N,),
    per-step labels as a list of (T_i,) tensors."""
    rows = [inputs[i] for i in index]
    x, lengths = pad(rows)
    y = None
    if isinstance(labels, Tensor):
        y = labels[torch.as_tensor(index, dtype=torch.int64)]
    elif labels is not None:
        y, _ = pad([labels[i] for i in index], ignore_index)
    return PaddedBatch(x, lengths, y, torch.as_tensor(index, dtype=torch.int64))


def bucket_batches(
    lengths: Sequence[int],
    batch_size: int,
    generator: torch.Generator | None = None,
    pool: int = 50,
    shuffle: bool = True,
) -> list[list[int]]:
    """Index lists of batches of similar-length sequences (every index exactly once).

    shuffle=False gives a fixed order (for evaluation): all indices sorted by length.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    n = len(lengths)
    if not shuffle:
        order = sorted(range(n), key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    order = torch.randperm(n, generator=generator).tolist()
    batches = []
    span = batch_size * pool
    for start in range(0, n, span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded steps of ``batches`` that are padding (0 = none)."""
    total = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    real = sum(lengths[i] for b in batches for i in b)
    return 1 - real / max(1, total)
