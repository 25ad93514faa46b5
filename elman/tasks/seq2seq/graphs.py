"""The two ONNX graphs of an encoder-decoder (``elman.nn.seq2seq.Seq2Seq``), and greedy
decoding that runs them in onnxruntime alone.

- "encoder": source (B, S), lengths (B,) -> memory (B, S, E), mask (B, S), hidden (B, L, E)
  [, cell (B, L, E)][, feed (B, E)]: the decoder's first state (``DecodeState``'s layout);
- "decoder-step": token (B,), hidden[, cell][, feed][, memory, mask] -> logits (B, V),
  hidden_out[, cell_out][, feed_out][, weights (B, S)]: one step of greedy or beam decoding
  (feed: with input feeding; memory, mask and weights: with attention). The caller carries
  the state from one call to the next, reordering its rows for beams.

B and S are dynamic. The encoder runs whole (``elman.graphs.graph``); the step graph is
traced through the decoder's reference step.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from elman.decode import Hypothesis, greedy_search
from elman.graphs import onnx as ox
from elman.graphs.graph import Graph, lengths, random_ids
from elman.nn.seq2seq import DecodeState, Seq2Seq


def _state_names(model: Seq2Seq) -> tuple[str, ...]:
    return ("hidden", *(["cell"] if model.lstm else []), *(["feed"] if model.input_feeding else []))


class _Encoder(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, source: Tensor, lengths: Tensor):
        s = self.model.encode(source, lengths)
        feed = (s.feed,) if self.model.input_feeding else ()
        return (s.memory, s.mask, s.hidden, *(() if s.cell is None else (s.cell,)), *feed)


class _DecoderStep(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, token: Tensor, *rest: Tensor):
        m, rest = self.model, list(rest)
        hidden = rest.pop(0)
        cell = rest.pop(0) if m.lstm else None
        feed = rest.pop(0) if m.input_feeding else None
        memory, mask = (rest[0], rest[1]) if m.attention is not None else (None, None)
        logits, new, weights = m.step(token, DecodeState(memory, mask, hidden, cell, feed))
        out = [logits, new.hidden, *([new.cell] if m.lstm else [])]
        out += [new.feed] if m.input_feeding else []
        return (*out, *([weights] if weights is not None else []))


def seq2seq_graphs(model: Seq2Seq) -> list[Graph]:
    """encoder: (source, lengths) -> memory, mask, first state; decoder-step: (token, state,
    memory, mask) -> logits, state, weights."""
    states = _state_names(model)
    attends = model.attention is not None
    vocab_in, vocab_out = model.source_embed.num_embeddings, model.target_embed.num_embeddings
    rows = {0: "batch"}

    def draw_encoder(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        n = lengths(batch, steps, g)
        mask = torch.arange(steps)[None, :] < n[:, None]
        return random_ids(vocab_in, (batch, steps), g) * mask, n

    def draw_step(batch: int, steps: int, g: torch.Generator) -> tuple[Tensor, ...]:
        state = [torch.randn(batch, model.layers, model.size, generator=g) for _ in states]
        if model.input_feeding:
            state[-1] = state[-1][:, 0]  # feed (B, E)
        memory = torch.randn(batch, steps, model.size, generator=g)
        mask = torch.arange(steps)[None, :] < lengths(batch, steps, g)[:, None]
        return (random_ids(vocab_out, (batch,), g), *state, *((memory, mask) if attends else ()))

    encoder_out = ("memory", "mask", *states)
    encoder_axes = {"source": {0: "batch", 1: "source_steps"}, "lengths": rows}
    encoder_axes |= {
        "memory": {0: "batch", 1: "source_steps"},
        "mask": {0: "batch", 1: "source_steps"},
    }
    encoder_axes |= {n: rows for n in states}
    step_in = ("token", *states, *(("memory", "mask") if attends else ()))
    step_out = ("logits", *(f"{n}_out" for n in states), *(("weights",) if attends else ()))
    step_axes = {n: rows for n in step_in + step_out}
    for n in ("memory", "mask", "weights") if attends else ():
        step_axes[n] = {0: "batch", 1: "source_steps"}
    return [
        Graph(
            "encoder",
            _Encoder(model),
            ("source", "lengths"),
            encoder_out,
            encoder_axes,
            draw_encoder,
        ),
        Graph(
            "decoder-step", _DecoderStep(model), step_in, step_out, step_axes, draw_step, step=True
        ),
    ]


def step_inputs(model: Seq2Seq, tokens: Tensor, state: DecodeState) -> tuple[Tensor, ...]:
    """The decoder-step graph's inputs for ``tokens`` (B,) in decoding ``state``."""
    feed = (state.feed,) if model.input_feeding else ()
    fixed = (state.memory, state.mask) if model.attention is not None else ()
    cell = (state.cell,) if model.lstm else ()
    return (tokens, state.hidden, *cell, *feed, *fixed)


def greedy(
    encoder: str | Path,
    decoder: str | Path,
    source: Tensor,
    lengths: Tensor,
    start: int,
    eos: int,
    max_len: int,
) -> list[Hypothesis]:
    """Greedy decoding of ``source`` (B, S) with the two graphs alone, in onnxruntime: the
    encoder once, then the decoder-step graph per token, its state carried here (what a
    runtime without PyTorch does); ``elman.decode.greedy_search`` drives the loop."""
    enc, dec = ox.session(encoder), ox.session(decoder)
    first = ox.run(enc, {"source": source, "lengths": lengths})
    first = dict(zip([o.name for o in enc.get_outputs()], first, strict=True))
    reads = [i.name for i in dec.get_inputs()]
    fixed = {n: first[n] for n in ("memory", "mask") if n in reads}
    state = {n: first[n] for n in reads if n not in fixed and n != "token"}
    out_names = [o.name for o in dec.get_outputs()]

    def step(tokens: Tensor, state: dict[str, Tensor]):
        got = dict(zip(out_names, ox.run(dec, {"token": tokens, **state, **fixed}), strict=True))
        return got["logits"], {n: got[f"{n}_out"] for n in state}, got.get("weights")

    return greedy_search(step, state, source.shape[0], start, eos, max_len)
