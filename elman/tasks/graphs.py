"""ONNX graphs of the task models, each with the random inputs it is exported and checked on.

Recurrent layers inside these graphs run whole (torch's fused op, or a Scan over time for
layer-norm, residual and projected cells: ``elman.graphs.scan``), so lengths, batch and
sequence length are dynamic; recurrent state the caller carries is an explicit input and
output. The graphs (inputs -> outputs; B, T, S dynamic):

- language and music models, "model-MODE": x (B, T) ids or (B, T, F) frames, h0[, c0]
  (L, B, H) -> y (B, T, V) logits, hn[, cn];
- classifier, "model-sequence": x (B, T) ids or (B, T, C) values (NaN: missing),
  lengths (B,) -> logits (B, K);
- tagger, "model-sequence": words (B, T), chars (B, T, W), lengths (B,) -> emissions
  (B, T, K), with a CRF also its transitions (K, K) [from, to], start (K,) and end (K,)
  scores, for Viterbi in the runtime (``elman.nn.crf``'s equations);
- seq2seq: "encoder" and "decoder-step" (``elman.tasks.seq2seq.graphs``);
- forecaster, autoregressive "model-sequence": lagged (B, T) z_{t-1}, [future (B, T, F),]
  [ids (B,),] h0[, c0] -> theta (B, T, P), hn[, cn] (T = 1 steps a stream); direct
  "model-sequence": z (B, C), [past (B, C, Cp),] [future_context (B, C, F),
  future_horizon (B, H, F),] [ids] -> theta (B, H, P). theta: (μ, σ) or ordered quantiles.
Inputs in brackets exist only where the model reads them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.graphs import onnx as ox
from elman.graphs.graph import Graph, lengths, random_ids
from elman.nn.seq2seq import Seq2Seq
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.forecast.model import Forecaster
from elman.tasks.seq2seq.graphs import seq2seq_graphs
from elman.tasks.tag.model import TagBatch, Tagger
from elman.tasks.tag.task import MAX_WORD


# ---- classifier -----------------------------------------------------------------------------
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


# ---- tagger ---------------------------------------------------------------------------------
class _Emissions(nn.Module):
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
    return [Graph("model-sequence", _Emissions(model), names, ("emissions", *crf), axes, draw)]


# ---- forecaster -----------------------------------------------------------------------------
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
    past, future, ids = forecaster_sizes(model)
    series = model.embed.num_embeddings if model.embed is not None else 1
    seq = {0: "batch", 1: "steps"}
    if model.mode == "autoregressive":
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

        return [Graph("model-sequence", _Autoregressive(model), names, outputs, axes, draw)]
    h = model.horizon
    names = ("z", *(["past"] if past else []))
    names += ("future_context", "future_horizon") if future else ()
    names += ("ids",) if ids else ()
    axes = {"z": seq, "past": seq, "future_context": seq, "future_horizon": {0: "batch"}}
    axes = {k: v for k, v in (axes | {"ids": {0: "batch"}}).items() if k in names}
    axes["theta"] = {0: "batch"}

    def draw_direct(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        x = [torch.randn(batch, steps, generator=g)]
        x += [torch.randn(batch, steps, past, generator=g)] if past else []
        if future:
            x += [torch.randn(batch, steps, future, generator=g)]
            x += [torch.randn(batch, h, future, generator=g)]
        return (*x, *([torch.randint(series, (batch,), generator=g)] if ids else []))

    return [Graph("model-sequence", _Direct(model), names, ("theta",), axes, draw_direct)]


# ---- language and music models ------------------------------------------------------------
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


def graphs_of(model: nn.Module) -> list[Graph]:
    """The graphs of a classifier, tagger, seq2seq or forecaster model (see the module
    docstring; language and music models: ``language_graphs``)."""
    if isinstance(model, SequenceClassifier):
        return classifier_graphs(model)
    if isinstance(model, Tagger):
        return tagger_graphs(model)
    if isinstance(model, Seq2Seq):
        return seq2seq_graphs(model)
    if isinstance(model, Forecaster):
        return forecaster_graphs(model)
    raise TypeError(
        "model: expected a SequenceClassifier, Tagger, Seq2Seq or Forecaster, got "
        f"{type(model).__name__} (language and music models: language_graphs)"
    )
