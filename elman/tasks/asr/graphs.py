"""ONNX graphs of acoustic models. Unidirectional: "model-MODE", x (B, T, F) frames, h0[, c0]
-> y (B, T, V) log-probabilities, hn[, cn], the state an explicit input and output so a
stream carries it between chunks (``language_graphs``). Bidirectional: "model-sequence",
x -> y over whole utterances (no state: the backward direction reads the end first)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.graphs import onnx as ox
from elman.graphs.graph import Graph
from elman.tasks.asr.model import AcousticModel, BiStack
from elman.tasks.lm.graphs import language_graphs, model_inputs


class _Utterances(nn.Module):
    def __init__(self, model: AcousticModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)[0]


def acoustic_graphs(model: AcousticModel, features: int, mode: str = "sequence") -> list[Graph]:
    ox.check_mode(mode)
    if not isinstance(model.rnn, BiStack):
        return language_graphs(model, features, True, mode)
    if mode == "step":
        raise ValueError(
            "mode: 'step' reads one frame at a time, which a bidirectional model cannot; "
            "export it with --mode sequence, or train one with --no-bidirectional"
        )

    def draw(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        return (torch.randn(batch, steps, features, generator=g),)

    axes = {"x": {0: "batch", 1: "steps"}, "y": {0: "batch", 1: "steps"}}
    return [Graph("model-sequence", _Utterances(model), ("x",), ("y",), axes, draw)]


def graph_inputs(model: AcousticModel, x: Tensor) -> tuple[Tensor, ...]:
    """The inputs of the graph for frames ``x`` (B, T, F): with zero states if it has them."""
    return (x,) if isinstance(model.rnn, BiStack) else model_inputs(model, x)


__all__ = ["acoustic_graphs", "graph_inputs"]
