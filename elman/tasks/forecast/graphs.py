"""The ONNX graph of a forecaster, with the random inputs it is exported and checked on.

The recurrent layer runs whole (``elman.graphs.graph``), so batch and steps are dynamic; the
state the caller carries is an explicit input and output. Inputs in brackets exist only
where the model reads them:

- autoregressive "model-sequence": lagged (B, T) z_{t-1}, [future (B, T, F),] [ids (B,),]
  h0[, c0] -> theta (B, T, P), hn[, cn] (T = 1 steps a stream);
- direct "model-sequence": z (B, C), [past (B, C, Cp),] [future_context (B, C, F),
  future_horizon (B, H, F),] [ids] -> theta (B, H, P).

theta: (μ, σ) or ordered quantiles (``elman.tasks.forecast.model.DistributionHead``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.graphs import onnx as ox
from elman.graphs.graph import Graph
from elman.tasks.forecast.model import Forecaster


def forecaster_sizes(model: Forecaster) -> tuple[int, int, int]:
    """(past, future, id embedding) input widths."""
    ids = 0 if model.embed is None else model.embed.embedding_dim
    return model.rnn.config.input_size - 1 - model.future - ids, model.future, ids


def _empty(like: Tensor) -> Tensor:
    """(B, T, 0) with ``like``'s (B, T): absent covariates, shaped like the input they join."""
    return like.unsqueeze(-1)[..., :0]


class _Autoregressive(nn.Module):
    def __init__(self, model: Forecaster) -> None:
        super().__init__()
        self.model = model
        _, self.future, self.ids = forecaster_sizes(model)
        self.lstm = model.rnn.config.mode == "LSTM"

    def forward(self, lagged: Tensor, *rest: Tensor):
        rest = list(rest)
        future = rest.pop(0) if self.future else _empty(lagged)
        ids = rest.pop(0) if self.ids else None
        state = tuple(rest) if self.lstm else rest[0]
        theta, new = self.model.step_parameters(lagged, future, ids, state)
        return (theta, *(new if isinstance(new, tuple) else (new,)))


class _Direct(nn.Module):
    def __init__(self, model: Forecaster) -> None:
        super().__init__()
        self.model = model
        self.past, self.future, self.ids = forecaster_sizes(model)

    def forward(self, z: Tensor, *rest: Tensor):
        rest = list(rest)
        past = rest.pop(0) if self.past else _empty(z)
        if self.future:
            context, horizon = rest.pop(0), rest.pop(0)
        else:
            context = _empty(z)
            horizon = _empty(z[:, :1].expand(-1, self.model.horizon))
        ids = rest.pop(0) if self.ids else None
        return self.model.horizon_parameters(z, past, context, horizon, ids)


def forecaster_graphs(model: Forecaster) -> list[Graph]:
    """autoregressive: (lagged, future, ids, state) -> theta, state; direct: (z, past,
    future_context, future_horizon, ids) -> theta."""
    if model.mode == "autoregressive":
        return [_autoregressive_graph(model)]
    return [_direct_graph(model)]


def _autoregressive_graph(model: Forecaster) -> Graph:
    _, future, ids = forecaster_sizes(model)
    series = model.embed.num_embeddings if model.embed is not None else 1
    seq = {0: "batch", 1: "steps"}
    states = ox.state_names(model.rnn)
    names = ("lagged", *(["future"] if future else []), *(["ids"] if ids else []))
    names += tuple(f"{s}0" for s in states)
    outputs = ("theta", *(f"{s}n" for s in states))
    axes = {"lagged": seq, "future": seq, "ids": {0: "batch"}, "theta": seq}
    axes = {k: v for k, v in axes.items() if k in names + outputs}
    axes |= {n: {1: "batch"} for s in states for n in (f"{s}0", f"{s}n")}

    def draw(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        x = [torch.randn(batch, steps, generator=g)]
        x += [torch.randn(batch, steps, future, generator=g)] if future else []
        x += [torch.randint(series, (batch,), generator=g)] if ids else []
        c = model.rnn.config
        rows = c.num_layers * c.directions
        sizes = [model.rnn.zero_state(1)[i].shape[-1] for i in range(len(states))]
        return (*x, *(torch.randn(rows, batch, n, generator=g) for n in sizes))

    return Graph("model-sequence", _Autoregressive(model), names, outputs, axes, draw)


def _direct_graph(model: Forecaster) -> Graph:
    past, future, ids = forecaster_sizes(model)
    series = model.embed.num_embeddings if model.embed is not None else 1
    seq, h = {0: "batch", 1: "steps"}, model.horizon
    names = ("z", *(["past"] if past else []))
    names += ("future_context", "future_horizon") if future else ()
    names += ("ids",) if ids else ()
    axes = {"z": seq, "past": seq, "future_context": seq, "future_horizon": {0: "batch"}}
    axes = {k: v for k, v in (axes | {"ids": {0: "batch"}}).items() if k in names}
    axes["theta"] = {0: "batch"}

    def draw(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        x = [torch.randn(batch, steps, generator=g)]
        x += [torch.randn(batch, steps, past, generator=g)] if past else []
        if future:
            x += [torch.randn(batch, steps, future, generator=g)]
            x += [torch.randn(batch, h, future, generator=g)]
        return (*x, *([torch.randint(series, (batch,), generator=g)] if ids else []))

    return Graph("model-sequence", _Direct(model), names, ("theta",), axes, draw)


__all__ = ["forecaster_graphs", "forecaster_sizes"]
