"""Turn what a user passes to a recurrent layer into one canonical, validated form and back.

Inputs may be padded tensors (``batch_first`` or not, batched or unbatched, with optional
``lengths``) or a ``PackedSequence``. Internally every path sees either a padded tensor plus
``lengths`` (None when all sequences are full) or packed data, and states (D*L, B, H).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from elman.nn.checks import check_dtype, check_finite, check_size, check_state, check_tensor
from elman.nn.config import RecurrentConfig


@dataclass
class Sequence:
    """A validated batch: ``x`` padded (layout as the user gave it) unless ``packed`` is set."""

    x: Tensor | None
    lengths: Tensor | None  # (B,) int64 on the CPU; None when every sequence has length T
    packed: PackedSequence | None
    unbatched: bool
    batch_size: int
    steps: int  # the padded length T (a packed batch: its longest sequence)


def prepare_input(
    cfg: RecurrentConfig, input: object, lengths: object, dtype: torch.dtype
) -> Sequence:
    """Validate ``input`` and ``lengths`` against ``cfg``; see ``Recurrent.forward``."""
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise ValueError(
                "lengths: a PackedSequence carries its own lengths; pass lengths "
                "only with a padded tensor"
            )
        data = check_tensor(
            "input.data", input.data, (2,), "packed data (sum(lengths), input_size)"
        )
        _check_features("input.data", data, cfg, dtype)
        steps = input.batch_sizes.numel()
        return Sequence(None, None, input, False, int(input.batch_sizes[0]), steps)
    layout = "(B, T, input_size)" if cfg.batch_first else "(T, B, input_size)"
    x = check_tensor(
        "input", input, (2, 3), f"a 3-D tensor {layout} or a 2-D unbatched tensor (T, input_size)"
    )
    _check_features("input", x, cfg, dtype)
    unbatched = x.dim() == 2
    if unbatched:
        if lengths is not None:
            raise ValueError(
                "lengths: an unbatched (2-D) input has one sequence of length T; "
                "pass lengths only with a batched 3-D input"
            )
        x = x.unsqueeze(0 if cfg.batch_first else 1)
    batch, steps = (x.shape[0], x.shape[1]) if cfg.batch_first else (x.shape[1], x.shape[0])
    if steps == 0:
        raise ValueError(f"input: expected at least one timestep, got shape {tuple(x.shape)}")
    lens = None if lengths is None else check_lengths(lengths, batch, steps)
    return Sequence(x, lens, None, unbatched, batch, steps)


def _check_features(name: str, x: Tensor, cfg: RecurrentConfig, dtype: torch.dtype) -> None:
    check_size(name, x, -1, cfg.input_size, "input_size")
    check_dtype(name, x, dtype)
    if cfg.check_finite:
        check_finite(name, x)


def check_lengths(lengths: object, batch: int, steps: int) -> Tensor | None:
    """Lengths as an int64 CPU tensor (B,), each in 1..T; None when all equal T."""
    try:
        lens = torch.as_tensor(lengths)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"lengths: expected a 1-D sequence of integers, got {lengths!r}") from e
    if lens.dtype.is_floating_point or lens.dtype.is_complex or lens.dtype == torch.bool:
        raise TypeError(f"lengths: expected integers, got dtype {lens.dtype}")
    if lens.dim() != 1 or lens.numel() != batch:
        raise ValueError(
            f"lengths: expected {batch} values (one per sequence in the batch), "
            f"got shape {tuple(lens.shape)}"
        )
    lens = lens.to("cpu", torch.int64)
    bad = (lens < 1) | (lens > steps)
    if bool(bad.any()):
        raise ValueError(
            f"lengths: every value must be in 1..{steps} (the padded length T), got {lens.tolist()}"
        )
    return None if bool((lens == steps).all()) else lens


def prepare_state(
    cfg: RecurrentConfig, hx: object, seq: Sequence, like: Tensor, sizes: tuple[int, ...]
) -> tuple[Tensor, ...]:
    """Initial states (D*L, B, size) per state tensor, zeros when ``hx`` is None."""
    rows, batch = cfg.directions * cfg.num_layers, seq.batch_size
    if hx is None:
        return tuple(like.new_zeros(rows, batch, n) for n in sizes)
    parts = hx if isinstance(hx, tuple | list) else (hx,)
    if len(parts) != len(sizes):
        want = "a tuple (h_0, c_0)" if len(sizes) == 2 else "a tensor h_0"
        raise TypeError(f"hx: expected {want} for mode {cfg.mode}, got {len(parts)} tensor(s)")
    states = []
    for name, s, n in zip(("h_0", "c_0"), parts, sizes, strict=False):
        shape = (rows, n) if seq.unbatched else (rows, batch, n)
        meaning = "(num_layers*num_directions, " + ("" if seq.unbatched else "batch, ") + "size)"
        s = check_state(name, s, shape, meaning, like.dtype)
        if cfg.check_finite:
            check_finite(name, s)
        states.append(s.unsqueeze(1) if seq.unbatched else s)
    return tuple(states)


def to_time_major(cfg: RecurrentConfig, seq: Sequence) -> tuple[Tensor, Tensor | None]:
    """Padded (T, B, F) input and lengths (None if all full) for the reference loop."""
    if seq.packed is not None:
        x, lens = pad_packed_sequence(seq.packed)
        return x, check_lengths(lens, seq.batch_size, x.shape[0])
    assert seq.x is not None
    return (seq.x.transpose(0, 1) if cfg.batch_first else seq.x), seq.lengths


def pack_like(y: Tensor, lengths: Tensor | None, like: PackedSequence) -> PackedSequence:
    """Pack time-major ``y`` (T, B, F) with exactly ``like``'s batch order and sizes."""
    if like.sorted_indices is not None:
        y = y.index_select(1, like.sorted_indices)
    lens = torch.full((y.shape[1],), y.shape[0]) if lengths is None else lengths
    if like.sorted_indices is not None and lengths is not None:
        lens = lens.index_select(0, like.sorted_indices.cpu())
    data = pack_padded_sequence(y, lens, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def pack_padded(cfg: RecurrentConfig, seq: Sequence) -> PackedSequence:
    """Pack a padded input with lengths, for the fused op (which reads lengths only when packed)."""
    assert seq.x is not None and seq.lengths is not None
    return pack_padded_sequence(seq.x, seq.lengths, cfg.batch_first, enforce_sorted=False)


def unpack_padded(cfg: RecurrentConfig, y: PackedSequence, steps: int) -> Tensor:
    """Back from packed to the user's padded layout, zeros past each sequence's end."""
    return pad_packed_sequence(y, cfg.batch_first, total_length=steps)[0]
