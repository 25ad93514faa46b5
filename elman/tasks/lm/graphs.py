"""ONNX graphs of language (and music) models: "model-MODE", x (B, T) ids or (B, T, F) frames,
h0[, c0] (L, B, H) -> y (B, T, V) logits, hn[, cn] (B and T dynamic; "step": T = 1). The
recurrent state the caller carries is an explicit input and output."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.graphs import onnx as ox
from elman.graphs.graph import Graph


class StatefulModel(nn.Module):
    """(x, *state) -> (outputs, *state) of a model whose ``forward(x, state=...)`` returns
    (outputs, state): the language and music models."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.lstm = model.rnn.config.mode == "LSTM"

    def forward(self, x: Tensor, *state: Tensor):
        out, new = self.model(x, state=state if self.lstm else state[0])
        return (out, *(new if isinstance(new, tuple) else (new,)))


def model_inputs(model: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    """``x`` (B, T[, F]) and zero initial states for it."""
    return (x, *model.rnn.zero_state(x.shape[0]))


def language_graphs(
    model: nn.Module, size: int, frames: bool, mode: str = "sequence"
) -> list[Graph]:
    """(x, h0[, c0]) -> (y, hn[, cn]) of a language (ids below ``size``) or music model
    (``frames``: 0/1 rows of ``size``); ``mode`` "step": one timestep (T = 1)."""
    ox.check_mode(mode)
    inputs, outputs = ox.io_names(model.rnn)
    axes = {"x": {0: "batch"}, "y": {0: "batch"}} | {
        n: {1: "batch"} for n in inputs[1:] + outputs[1:]
    }
    if mode == "sequence":
        axes["x"][1] = axes["y"][1] = "steps"

    def draw(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        steps = 1 if mode == "step" else steps
        if frames:
            x = torch.bernoulli(torch.full((batch, steps, size), 0.1), generator=g)
        else:
            x = torch.randint(size, (batch, steps), generator=g)
        return model_inputs(model, x)

    module = StatefulModel(model)
    return [
        Graph(f"model-{mode}", module, tuple(inputs), tuple(outputs), axes, draw, mode == "step")
    ]


__all__ = ["StatefulModel", "language_graphs", "model_inputs"]
