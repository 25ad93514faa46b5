"""The tagger's ONNX graph, "model-sequence": words (B, T), chars (B, T, W), lengths (B,) ->
emissions (B, T, K), with a CRF also its transitions (K, K) [from, to], start (K,) and end (K,)
scores, so a runtime can run Viterbi itself (``elman.nn.crf``'s equations). Batch, length and
lengths are dynamic.

A tagger with contextual string embeddings holds its two character LMs in the graph and takes
four more inputs, ``ContextualStrings.encode``'s ``StringBatch``: forward_chars (B, S_f) and
backward_chars (B, S_b), the ids of "\\n" + sentence and "\\n" + reversed sentence in each LM's
vocabulary (right-padded), and forward_at, backward_at (B, T), each word's last and first
character's index in them (``elman.tasks.tag.strings`` gives the equations). The graph computes
the features in float32; the run's own predict rounds them to float16 first, as training cached
them, so the two may differ in the last digits."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.graphs.graph import Graph, lengths, random_ids
from elman.tasks.tag.data import MAX_WORD
from elman.tasks.tag.model import TagBatch, Tagger
from elman.tasks.tag.strings import StringBatch

STRINGS = ("forward_chars", "backward_chars", "forward_at", "backward_at")


class Emissions(nn.Module):
    """(words, chars, lengths[, the four strings inputs]) -> emissions[, transitions, start,
    end] of a ``Tagger``."""

    def __init__(self, model: Tagger) -> None:
        super().__init__()
        self.model = model

    def forward(self, words: Tensor, chars: Tensor, lengths: Tensor, *strings: Tensor):
        features = None
        if self.model.strings is not None:
            features = self.model.strings(StringBatch(*strings, lengths))
        e = self.model.emissions(TagBatch(words, chars, lengths, None, lengths, features))
        crf = self.model.crf
        if crf is None:
            return e
        return e, crf.transitions, crf.start, crf.end


def draw_strings(model: Tagger, n: Tensor, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
    """Random strings inputs: each word a few characters, positions inside the strings."""
    s = model.strings
    width = 1 + 4 * steps  # "\n" and words of up to 3 characters with their spaces
    vocab = (len(s.vocabs[0]), len(s.vocabs[1]))
    ids = [random_ids(v, (len(n), width), g, low=0) for v in vocab]
    ends = torch.randint(1, 4, (len(n), steps), generator=g).add(1).cumsum(1)  # (B, T)
    mask = torch.arange(steps)[None, :] < n[:, None]
    return (*ids, (ends - 1) * mask, (width + 1 - ends) * mask)


def tagger_graphs(model: Tagger, word_length: int = MAX_WORD) -> list[Graph]:
    """(words, chars, lengths[, strings inputs]) -> emissions[, transitions, start, end]."""

    def draw(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        n = lengths(batch, steps, g)
        mask = torch.arange(steps)[None, :] < n[:, None]
        words_size = model.embed.num_embeddings if model.embed is not None else 2
        words = random_ids(words_size, (batch, steps), g) * mask
        chars_size = model.chars.embed.num_embeddings if model.chars is not None else 2
        chars = random_ids(chars_size, (batch, steps, word_length), g)
        chars[..., word_length // 2 :] = 0  # words shorter than the character window
        extra = draw_strings(model, n, steps, g) if model.strings is not None else ()
        return words, chars * mask[..., None], n, *extra

    crf = ("transitions", "start", "end") if model.crf is not None else ()
    axes = dict(
        words={0: "batch", 1: "steps"},
        chars={0: "batch", 1: "steps", 2: "characters"},
        lengths={0: "batch"},
        emissions={0: "batch", 1: "steps"},
    )
    names: tuple[str, ...] = ("words", "chars", "lengths")
    if model.strings is not None:
        names += STRINGS
        axes |= {
            "forward_chars": {0: "batch", 1: "forward_length"},
            "backward_chars": {0: "batch", 1: "backward_length"},
            "forward_at": {0: "batch", 1: "steps"},
            "backward_at": {0: "batch", 1: "steps"},
        }
    return [Graph("model-sequence", Emissions(model), names, ("emissions", *crf), axes, draw)]


__all__ = ["STRINGS", "Emissions", "tagger_graphs"]
