"""The tagger's ONNX graph, "model-sequence": words (B, T), chars (B, T, W), lengths (B,) ->
emissions (B, T, K), with a CRF also its transitions (K, K) [from, to], start (K,) and end (K,)
scores, so a runtime can run Viterbi itself (``elman.nn.crf``'s equations). Batch, length and
lengths are dynamic."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.graphs.graph import Graph, lengths, random_ids
from elman.tasks.tag.model import TagBatch, Tagger
from elman.tasks.tag.task import MAX_WORD


class Emissions(nn.Module):
    """(words, chars, lengths) -> emissions[, transitions, start, end] of a ``Tagger``."""

    def __init__(self, model: Tagger) -> None:
        super().__init__()
        self.model = model

    def forward(self, words: Tensor, chars: Tensor, lengths: Tensor):
        e = self.model.emissions(TagBatch(words, chars, lengths, None, lengths))
        crf = self.model.crf
        if crf is None:
            return e
        return e, crf.transitions, crf.start, crf.end


def tagger_graphs(model: Tagger, word_length: int = MAX_WORD) -> list[Graph]:
    """(words, chars, lengths) -> emissions[, transitions, start, end]."""

    def draw(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        n = lengths(batch, steps, g)
        mask = torch.arange(steps)[None, :] < n[:, None]
        words = random_ids(model.embed.num_embeddings, (batch, steps), g) * mask
        chars_size = model.chars.embed.num_embeddings if model.chars is not None else 2
        chars = random_ids(chars_size, (batch, steps, word_length), g)
        chars[..., word_length // 2 :] = 0  # words shorter than the character window
        return words, chars * mask[..., None], n

    crf = ("transitions", "start", "end") if model.crf is not None else ()
    axes = dict(
        words={0: "batch", 1: "steps"},
        chars={0: "batch", 1: "steps", 2: "characters"},
        lengths={0: "batch"},
        emissions={0: "batch", 1: "steps"},
    )
    names = ("words", "chars", "lengths")
    return [Graph("model-sequence", Emissions(model), names, ("emissions", *crf), axes, draw)]


__all__ = ["Emissions", "tagger_graphs"]
