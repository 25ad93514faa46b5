"""A language or music model fed piece by piece: keep the state between calls and get exactly
what the whole-sequence run gives at those steps.

    stream = Stream(model)                 # Stream(model, sigmoid=True): a piano-roll model
    log_probs = stream.feed(chunk)         # (T,) ids or (T, F) frames -> (T, V)
    data = stream.to_bytes()               # safetensors bytes
    stream = Stream.from_bytes(model, data)
    Stream.feed_together(streams, chunks)  # one batched pass, the same results
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.tasks.streaming import (
    State,
    as_model_state,
    as_tuple,
    check_together,
    pack,
    recurrent_layer,
    recurrent_state,
    row,
    stack,
    take,
    unpack,
)


def _log_probs(out: Tensor, sigmoid: bool) -> Tensor:
    """Outputs (T, V) as log-probabilities: log-softmax over tokens, or with ``sigmoid`` a
    log-sigmoid per output (a piano roll's pitches are independent Bernoullis)."""
    return F.logsigmoid(out) if sigmoid else F.log_softmax(out, dim=-1)


class Stream:
    """One sequence fed piece by piece through a language or music ``model`` (eval mode, no
    gradients): a model whose ``forward(x, state=...)`` takes a batch-first chunk and
    returns (outputs, state). ``sigmoid``: the outputs are independent per-unit logits (a
    piano-roll model), else scores over one vocabulary."""

    def __init__(self, model: nn.Module, state: State | None = None, sigmoid: bool = False) -> None:
        if not isinstance(sigmoid, bool):
            raise TypeError(f"sigmoid: expected True or False, got {sigmoid!r}")
        self.model, self.rnn = model, recurrent_layer(model)
        self.state: State | None = state
        self.sigmoid = sigmoid
        self.steps = 0

    def zero_state(self, batch: int = 1) -> State:
        return self.rnn.zero_state(batch)

    @torch.no_grad()
    def feed(self, chunk: Tensor | Sequence[int]) -> Tensor:
        """Feed steps (T,) token ids or (T, F) frames; returns (T, V) log-probabilities of the
        next step after each one."""
        return Stream.feed_together([self], [chunk])[0]

    @classmethod
    @torch.no_grad()
    def feed_together(
        cls, streams: Sequence[Stream], chunks: Sequence[Tensor | Sequence[int]]
    ) -> list[Tensor]:
        """Feed one chunk to each stream, all through one batched forward pass (chunks of one
        shape, streams of one model). Each stream's state and result are as if fed alone."""
        check_together(streams, chunks)
        xs = [torch.as_tensor(x) for x in chunks]
        for x in xs:
            if x.dim() not in (1, 2) or x.shape[0] == 0:
                raise ValueError(
                    f"chunk: expected (steps,) ids or (steps, features), got shape {tuple(x.shape)}"
                )
        if len({x.shape for x in xs}) != 1:
            raise ValueError(
                f"chunks: must share one shape, got {sorted({tuple(x.shape) for x in xs})}"
            )
        first = streams[0]
        model, rnn = first.model.eval(), first.rnn
        states = stack([s.state if s.state is not None else s.zero_state() for s in streams])
        out, new = model(torch.stack(xs), state=as_model_state(rnn, states))
        for i, s in enumerate(streams):
            s.state, s.steps = row(as_tuple(new), i), s.steps + xs[i].shape[0]
        return [_log_probs(o, first.sigmoid) for o in out.unbind(0)]

    def state_dict(self) -> dict[str, Tensor]:
        state = self.state if self.state is not None else self.zero_state()
        tensors = {f"state.{i}": s.contiguous() for i, s in enumerate(state)}
        return tensors | {"steps": torch.tensor(self.steps)}

    def to_bytes(self) -> bytes:
        """The state as safetensors bytes (restored by ``from_bytes``)."""
        return pack(self.state_dict())

    @classmethod
    def from_bytes(cls, model: nn.Module, data: bytes, sigmoid: bool = False) -> Stream:
        """A stream of ``model`` that continues where ``to_bytes`` left one (``sigmoid`` as
        the saved stream had it)."""
        tensors = unpack(data, "language or music stream")
        stream = cls(model, sigmoid=sigmoid)
        stream.state = recurrent_state(tensors, stream.rnn)
        stream.steps = int(take(tensors, "steps", ()))
        return stream


__all__ = ["Stream"]
