"""Stateful streams over trained recurrent models: feed one step or a chunk at a time, keep
the state between calls, and get exactly what the whole-sequence run gives at those steps.

A ``Stream`` wraps a model whose ``forward(x, state=...)`` takes a batch-first chunk and
returns (outputs, state): the language models (token ids in, next-token log-probabilities
out) and the music models (frames or note tokens in, next-step log-probabilities out).
State leaves as bytes (safetensors) and comes back the same way, so a stream survives a
restart; ``feed_together`` steps many streams as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from torch import Tensor, nn

from elman.nn.recurrent import Recurrent

State = tuple[Tensor, ...]  # (h,) or (h, c), each (L * D, B, size)


def _layer(model: nn.Module) -> Recurrent:
    rnn = getattr(model, "rnn", None)
    if not isinstance(rnn, Recurrent):
        raise TypeError(
            f"model: expected a model with a recurrent layer .rnn, got {type(model).__name__}"
        )
    if rnn.config.bidirectional:
        raise ValueError("model: a bidirectional layer reads the future; it cannot stream")
    return rnn


def _as_tuple(state: Tensor | State) -> State:
    return state if isinstance(state, tuple) else (state,)


def _as_model_state(rnn: Recurrent, state: State) -> Tensor | State:
    """What the layer takes: (h, c) for LSTMs, h alone for the rest."""
    return state if rnn.config.mode == "LSTM" else state[0]


def _log_probs(model: nn.Module, out: Tensor) -> Tensor:
    """Outputs (T, V) as log-probabilities: log-softmax over tokens, or per-pitch
    log-sigmoid for piano-roll models (whose pitches are independent Bernoullis)."""
    if getattr(model, "embed", True) is None:  # a piano-roll model: a sigmoid per pitch
        return F.logsigmoid(out)
    return F.log_softmax(out, dim=-1)


class Stream:
    """One sequence fed piece by piece through ``model`` (eval mode, no gradients)."""

    def __init__(self, model: nn.Module, state: State | None = None) -> None:
        self.model, self.rnn = model, _layer(model)
        self.state: State | None = state
        self.steps = 0

    def zero_state(self, batch: int = 1) -> State:
        return self.rnn.zero_state(batch)

    @torch.no_grad()
    def feed(self, chunk: Tensor | Sequence[int]) -> Tensor:
        """Feed steps (T,) token ids or (T, F) frames; returns (T, V) log-probabilities of the
        next step after each one."""
        x = torch.as_tensor(chunk)
        if x.dim() not in (1, 2) or x.shape[0] == 0:
            raise ValueError(
                f"chunk: expected (steps,) ids or (steps, features), got shape {tuple(x.shape)}"
            )
        self.model.eval()
        state = None if self.state is None else _as_model_state(self.rnn, self.state)
        out, new = self.model(x[None], state=state)
        self.state, self.steps = _as_tuple(new), self.steps + x.shape[0]
        return _log_probs(self.model, out[0])

    def state_dict(self) -> dict[str, Tensor]:
        state = self.state if self.state is not None else self.zero_state()
        tensors = {f"state.{i}": s.contiguous() for i, s in enumerate(state)}
        return tensors | {"steps": torch.tensor(self.steps)}

    def to_bytes(self) -> bytes:
        """The state as safetensors bytes (restored by ``from_bytes``)."""
        return save_bytes(self.state_dict())

    @classmethod
    def from_bytes(cls, model: nn.Module, data: bytes) -> Stream:
        """A stream of ``model`` that continues where ``to_bytes`` left one."""
        tensors = load_bytes(data)
        stream = cls(model)
        want = stream.zero_state()
        state = tuple(tensors.get(f"state.{i}") for i in range(len(want)))
        for i, (got, ref) in enumerate(zip(state, want, strict=True)):
            if got is None or got.shape != ref.shape:
                shape = None if got is None else tuple(got.shape)
                raise ValueError(f"state.{i}: expected shape {tuple(ref.shape)}, got {shape}")
        stream.state, stream.steps = state, int(tensors["steps"])  # type: ignore[assignment]
        return stream


@torch.no_grad()
def feed_together(
    streams: Sequence[Stream], steps: Sequence[Tensor | Sequence[int]]
) -> list[Tensor]:
    """Feed one chunk to each stream, all through one batched forward pass (chunks of equal
    length, streams of one model). Each stream's state and result are as if fed alone."""
    if not streams or len(streams) != len(steps):
        raise ValueError(
            f"streams, steps: expected one chunk per stream, got {len(streams)} and {len(steps)}"
        )
    model = streams[0].model
    if any(s.model is not model for s in streams):
        raise ValueError("streams: every stream must run the same model to share a batch")
    xs = [torch.as_tensor(x) for x in steps]
    if len({x.shape for x in xs}) != 1:
        raise ValueError(
            f"steps: chunks must share one shape, got {sorted({tuple(x.shape) for x in xs})}"
        )
    states = [s.state if s.state is not None else s.zero_state() for s in streams]
    batch = tuple(torch.cat(parts, dim=1) for parts in zip(*states, strict=True))
    model.eval()
    out, new = model(torch.stack(xs), state=_as_model_state(streams[0].rnn, batch))
    new = _as_tuple(new)
    results = []
    for i, s in enumerate(streams):
        s.state = tuple(part[:, i : i + 1].contiguous() for part in new)
        s.steps += xs[i].shape[0]
        results.append(_log_probs(model, out[i]))
    return results
