"""The classifier's ONNX graph, "model-sequence": x (B, T) ids or (B, T, C) values (NaN:
missing), lengths (B,) -> logits (B, K). The recurrent layer runs whole (torch's fused op, or
a Scan over time: ``elman.graphs.scan``), so batch, length and lengths are dynamic."""

from __future__ import annotations

import torch
from torch import Tensor

from elman.graphs.graph import Graph, lengths, random_ids
from elman.tasks.classify.model import SequenceClassifier


def classifier_graphs(model: SequenceClassifier) -> list[Graph]:
    """(x, lengths) -> logits."""

    def draw(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        if model.embed is not None:
            x = random_ids(model.embed.num_embeddings, (batch, steps), g)
        else:
            x = torch.randn(batch, steps, model.scale_mean.shape[0], generator=g)
        return x, lengths(batch, steps, g)

    axes = dict(x={0: "batch", 1: "steps"}, lengths={0: "batch"}, logits={0: "batch"})
    return [Graph("model-sequence", model, ("x", "lengths"), ("logits",), axes, draw)]


__all__ = ["classifier_graphs"]
