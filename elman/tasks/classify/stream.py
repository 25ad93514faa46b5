r"""Streaming classification: a unidirectional classifier reads a sequence a step or a chunk
at a time and gives, after every step, the class probabilities of the sequence so far,
equal to ``predict`` on that prefix. Memory stays constant: the pooling is kept as running
statistics of the encoder outputs h_1..h_t:

    last       p_t = h_t
    mean       S_t = S_{t-1} + h_t                               p_t = S_t / t
    max        M_t = max(M_{t-1}, h_t)                           p_t = M_t
    attention  e_t = v^T tanh(W h_t + b)       m_t = max(m_{t-1}, e_t)      (online softmax,
               Z_t = Z_{t-1} exp(m_{t-1} - m_t) + exp(e_t - m_t)             Milakov &
               A_t = A_{t-1} exp(m_{t-1} - m_t) + exp(e_t - m_t) h_t         Gimelshein 2018)
               p_t = A_t / Z_t = Σ_{s≤t} softmax(e_1..e_t)_s h_s
    probabilities_t = softmax(W_o p_t + b_o)

A bidirectional classifier cannot stream: its backward direction starts at the sequence's
end, so every earlier output changes when a step arrives. Nor can the LSTM-FCN convolutional
branch: its "same" convolutions read up to seven steps ahead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from elman.nn.pooling import PARTS
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.streaming import (
    State,
    as_model_state,
    as_tuple,
    check_lengths,
    check_together,
    pack,
    recurrent_layer,
    recurrent_state,
    row,
    stack,
    take,
    unpack,
)

WHAT = "classify stream"


def _network(model) -> SequenceClassifier:
    """The network of a ``ClassifyRun`` (or the network itself), checked to stream."""
    network = getattr(model, "model", model)
    if not isinstance(network, SequenceClassifier):
        raise TypeError(
            f"model: expected a ClassifyRun or SequenceClassifier, got {type(model).__name__}"
        )
    if network.rnn.config.bidirectional:
        raise ValueError(
            "model: a bidirectional classifier cannot stream: its backward direction starts "
            "at the sequence's end, so every output changes when a step arrives; train with "
            "bidirectional=False (--no-bidirectional) to stream"
        )
    if network.conv is not None:
        raise ValueError(
            "model: the convolutional branch (conv=True) cannot stream: its convolutions read "
            "steps ahead and it pools the whole window; train with conv=False (--no-conv, the "
            "default for numeric series is on) to stream"
        )
    recurrent_layer(network)
    return network


def _empty_pool(kind: str, size: int, like: Tensor) -> dict[str, Tensor]:
    """Running pooling statistics of one sequence that has read nothing."""
    if kind == "last":
        return {}
    if kind == "mean":
        return {"sum": like.new_zeros(1, size)}
    if kind == "max":
        return {"max": like.new_full((1, size), float("-inf"))}
    if kind == "concat":
        return _empty_pool("max", size, like) | _empty_pool("mean", size, like)
    if kind == "attention":
        return {
            "peak": like.new_full((1,), float("-inf")),
            "total": like.new_zeros(1),
            "weighted": like.new_zeros(1, size),
        }
    raise ValueError(f"pooling: cannot stream {kind!r}")


def _pool_steps(
    model: SequenceClassifier, h: Tensor, stats: dict[str, Tensor], seen: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Pooled features (B, T, D) after each step of outputs ``h`` (B, T, D), from running
    ``stats`` (batch B) over ``seen`` (B,) earlier steps; and the updated statistics."""
    return _pool_kind(model, model.pool.kind, h, stats, seen)


def _pool_kind(
    model: SequenceClassifier, kind: str, h: Tensor, stats: dict[str, Tensor], seen: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    if kind == "concat":  # [last ; max ; mean], each from its own statistics
        parts = [_pool_kind(model, k, h, stats, seen) for k in PARTS]
        merged = {k: v for _, part in parts for k, v in part.items()}
        return torch.cat([p for p, _ in parts], dim=-1), merged
    if kind == "last":
        return h, {}
    if kind == "mean":
        total = stats["sum"].unsqueeze(1) + h.cumsum(1)  # (B, T, D)
        count = seen[:, None] + torch.arange(1, h.shape[1] + 1, device=h.device)[None, :]
        return total / count.unsqueeze(2).to(h.dtype), {"sum": total[:, -1]}
    if kind == "max":
        best = torch.maximum(h.cummax(1).values, stats["max"].unsqueeze(1))
        return best, {"max": best[:, -1]}
    if kind == "attention":
        return _attend_steps(model, h, stats)
    raise ValueError(f"pooling: cannot stream {kind!r}")


def _attend_steps(
    model: SequenceClassifier, h: Tensor, stats: dict[str, Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Attention pooling as an online softmax (the module docstring's m, Z, A)."""
    e = model.pool.v(torch.tanh(model.pool.project(h))).squeeze(2)  # (B, T)
    m, z, a = stats["peak"], stats["total"], stats["weighted"]
    pooled = []
    for e_t, h_t in zip(e.unbind(1), h.unbind(1), strict=True):
        m_new = torch.maximum(m, e_t)
        decay, w = torch.exp(m - m_new), torch.exp(e_t - m_new)  # decay is 0 at the start
        z = z * decay + w
        a = a * decay.unsqueeze(1) + w.unsqueeze(1) * h_t
        m = m_new
        pooled.append(a / z.unsqueeze(1))
    return torch.stack(pooled, dim=1), {"peak": m, "total": z, "weighted": a}


class ClassifyStream:
    """One sequence read by a unidirectional classifier, a step or a chunk at a time.

    ``model``: a ``ClassifyRun`` (its ``classes`` are kept) or a ``SequenceClassifier``.
    """

    def __init__(self, model) -> None:
        self.classes: tuple[str, ...] | None = getattr(model, "classes", None)
        self.model = _network(model)
        self.rnn = self.model.rnn
        self.state: State | None = None
        size = self.model.pool.size
        self.pooled = _empty_pool(self.model.pool.kind, size, self.model.head.weight)
        self.steps = 0

    def inputs(self, chunk) -> Tensor:
        """A chunk as (T,) ids or (T, C) values, checked against the model."""
        if self.model.embed is not None:
            x = torch.as_tensor(chunk)
            vocab = self.model.embed.num_embeddings
            if x.dim() != 1 or x.dtype.is_floating_point or x.numel() == 0:
                raise ValueError(
                    f"chunk: expected (steps,) token ids, got {x.dtype} of shape {tuple(x.shape)}"
                )
            if int(x.min()) < 0 or int(x.max()) >= vocab:
                raise ValueError(f"chunk: token ids must lie in [0, {vocab}), got {x.tolist()}")
            return x.long()
        channels = self.model.scale_mean.shape[0]
        x = torch.as_tensor(chunk, dtype=self.model.scale_mean.dtype)
        if x.dim() == 1 and channels == 1:
            x = x[:, None]
        if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] != channels:
            raise ValueError(
                f"chunk: expected values of shape (steps, {channels}), got {tuple(x.shape)}"
            )
        return x

    @torch.no_grad()
    def feed(self, chunk: Tensor | Sequence) -> Tensor:
        """Feed (T,) token ids or (T, C) values (T,) for one channel); returns (T, K) class
        probabilities of the sequence so far after each step (the last row: after all)."""
        return ClassifyStream.feed_together([self], [chunk])[0]

    @classmethod
    @torch.no_grad()
    def feed_together(
        cls, streams: Sequence[ClassifyStream], chunks: Sequence[Tensor | Sequence]
    ) -> list[Tensor]:
        """Feed one chunk to each stream (chunks of one length, streams of one model) through
        one batched pass; each stream's result and state are as if fed alone."""
        check_together(streams, chunks)
        xs = [s.inputs(c) for s, c in zip(streams, chunks, strict=True)]
        check_lengths(xs)
        model, rnn = streams[0].model.eval(), streams[0].rnn
        states = [s.state if s.state is not None else rnn.zero_state(1) for s in streams]
        x = torch.stack(xs).to(model.head.weight.device)
        h, new = rnn(model.inputs(x), as_model_state(rnn, stack(states)))
        stats = {k: torch.cat([s.pooled[k] for s in streams]) for k in streams[0].pooled}
        seen = torch.tensor([s.steps for s in streams], device=h.device)
        features, stats = _pool_steps(model, h, stats, seen)
        probs = model.head(model.drop(features)).softmax(-1)  # (B, T, K)
        new = as_tuple(new)
        for i, s in enumerate(streams):
            s.state, s.steps = row(new, i), s.steps + len(xs[i])
            s.pooled = {k: v[i : i + 1].contiguous() for k, v in stats.items()}
        return list(probs.unbind(0))

    def to_bytes(self) -> bytes:
        """The recurrent state, the running pooling statistics and the step count as
        safetensors bytes; ``from_bytes`` continues from them exactly."""
        state = self.state if self.state is not None else self.rnn.zero_state(1)
        tensors = {f"state.{i}": s for i, s in enumerate(state)}
        tensors |= {f"pool.{k}": v for k, v in self.pooled.items()}
        return pack(tensors | {"steps": torch.tensor(self.steps)})

    @classmethod
    def from_bytes(cls, model, data: bytes) -> ClassifyStream:
        """A stream of ``model`` that continues where ``to_bytes`` left one."""
        tensors = unpack(data, WHAT)
        stream = cls(model)
        stream.state = recurrent_state(tensors, stream.rnn)
        stream.pooled = {
            k: take(tensors, f"pool.{k}", tuple(v.shape)).to(v.dtype)
            for k, v in stream.pooled.items()
        }
        stream.steps = int(take(tensors, "steps", ()))
        return stream


__all__ = ["ClassifyStream"]
