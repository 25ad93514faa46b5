"""Sampling music from a trained model (``elman.tasks.music.task``) and writing it as MIDI."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from elman.data import music as data
from elman.tasks.music.task import Encoding, MusicModel, encode, held_out
from elman.train.evaluation import evaluating

NOTES = 2  # melody token ids below this are <s> and <unk>, never sampled


def generate(
    model: MusicModel,
    encoding: Encoding,
    primer: Tensor,
    length: int,
    temperature: float = 1.0,
    seed: int | None = None,
) -> Tensor:
    """The primer (frames (k, P) or token ids (k,), k >= 0) followed by exactly ``length``
    sampled steps: each pitch drawn on its own from its sigmoid, or one note token from the
    softmax (never ``<unk>``, nor the end token ``<s>``: a tune's end would cut ``length``
    short). ``temperature`` divides the logits; 0 takes the likeliest instead (each pitch
    with p > 0.5, the top token). Runs on the model's device; the piece comes back on the
    CPU."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length: expected a positive integer, got {length!r}")
    if not temperature >= 0:
        raise ValueError(f"temperature: expected a value >= 0, got {temperature!r}")
    if encoding.tokens and len(encoding.tokens) <= NOTES:
        raise ValueError("this melody model knows no note tokens: it cannot generate notes")
    melody = bool(encoding.tokens)
    start = torch.zeros(1, dtype=torch.int64) if melody else torch.zeros(1, encoding.outputs)
    with evaluating(model) as to_model:
        x = to_model(torch.cat([start, primer]))
        g = torch.Generator(x.device)  # on the model's device, as the samplers require
        if seed is None:
            g.seed()
        else:
            g.manual_seed(seed)
        logits, state = model(x[None])
        out = list(x[1:])
        for _ in range(length):
            step = _sample(logits[0, -1], melody, temperature, g)
            out.append(step[0] if melody else step)
            logits, state = model(step[None] if melody else step[None, None], state=state)
    return torch.stack(out).cpu()


def _sample(last: Tensor, melody: bool, temperature: float, g: torch.Generator) -> Tensor:
    """The next step from the last logits: a note token id (1,), or a frame (P,)."""
    last = last / (temperature or 1.0)
    if melody:
        last[:NOTES] = float("-inf")  # <s> and <unk>
        if temperature == 0:
            return last.argmax().reshape(1)
        return torch.multinomial(torch.softmax(last, -1), 1, generator=g)
    p = torch.sigmoid(last)
    return (p > 0.5).float() if temperature == 0 else torch.bernoulli(p, generator=g)


def write_midi(piece: Tensor, encoding: Encoding, step: float, path: str | Path) -> Path:
    """A roll (T, P) or token ids (T,) of this encoding as a MIDI file."""
    from elman.data.midi import write_melody_midi, write_roll_midi

    if encoding.tokens:
        events = [data.token_event(encoding.tokens[int(i)]) for i in piece if int(i) >= NOTES]
        return write_melody_midi(events, path)
    return write_roll_midi(piece, path, step, encoding.low)


def primer_from(meta: dict, index: int, steps: int, midi: str | Path | None = None) -> Tensor:
    """The first ``steps`` steps of held-out test piece ``index``, or of a MIDI file
    (chorales only: read on the model's grid and pitch range)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"primer steps: expected an integer >= 0, got {steps!r}")
    info = meta["task_config"]
    encoding = Encoding.from_json(info["vocab"])
    if midi is not None:
        if encoding.tokens:
            raise ValueError("a MIDI primer needs a chorales (piano-roll) model")
        from elman.data.midi import read_midi_roll

        roll = read_midi_roll(midi, info["model"]["step"])
        return encode(encoding, roll)[:steps]
    pieces = held_out(meta, "test")
    if not 0 <= index < len(pieces):
        raise ValueError(f"primer piece: expected an index in [0, {len(pieces)}), got {index}")
    return pieces[index][:steps]
