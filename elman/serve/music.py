"""Music models: generation (steps and a MIDI file, base64) and sessions that read frames
of sounding pitches (chorale rolls) or note tokens (melodies) and answer what comes next."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import torch

from elman.serve.config import Limits
from elman.serve.language import refuse_unused, top_k_option
from elman.serve.served import Chunk, RequestError, Served, check_steps
from elman.tasks.music.run import MusicRun

SOUNDING = 0.05  # pitches listed in a roll session's reply: next-step probability above this


class MusicModel(Served):
    """A music run: ``generate`` (a piece and its MIDI) and next-step sessions answering the
    likeliest note tokens (melody) or the pitches likely to sound (chorales)."""

    endpoints = ("generate", "sessions")

    def __init__(self, name: str, run: MusicRun) -> None:
        super().__init__(name, run)
        self.music, self.encoding = run, run.encoding  # ``self.run`` is also Served.run's name
        self.takes = "frames" if run.frames else "tokens"

    def encode(self, frames: list | None, tokens: list | None, field: str) -> torch.Tensor:
        """Frames (lists of MIDI pitches) as a roll (T, P), or tokens as ids (T,)."""
        e = self.encoding
        if e.tokens:
            index = {t: i for i, t in enumerate(e.tokens)}
            unknown = sorted({t for t in tokens or [] if t not in index})
            if unknown:
                raise RequestError(f"{field}: tokens the model does not know: {unknown[:10]}")
            return torch.tensor([index[t] for t in tokens or []], dtype=torch.int64)
        roll = torch.zeros(len(frames or []), e.outputs)
        for t, pitches in enumerate(frames or []):
            for p in pitches:
                if (isinstance(p, float) and not p.is_integer()) or not e.low <= p <= e.high:
                    raise RequestError(
                        f"{field}[{t}]: pitch {p!r} is not a MIDI number in the model's range "
                        f"[{e.low}, {e.high}]"
                    )
                roll[t, int(p) - e.low] = 1.0
        return roll

    def start(self) -> torch.Tensor:
        """What the model reads before a piece's first step (``<s>``, or silence)."""
        e = self.encoding
        return torch.zeros(1, dtype=torch.int64) if e.tokens else torch.zeros(1, e.outputs)

    # ---- generation ---------------------------------------------------------------------
    def generate(self, request, limits: Limits) -> dict:
        other = "frames" if self.encoding.tokens else "tokens"  # the primer it does not read
        refuse_unused(request, ("prompt", "top_k", "top_p", other), self.task)
        if request.length > limits.generate:
            raise RequestError(f"length: over this server's generation limit of {limits.generate}")
        given = request.tokens if self.encoding.tokens else request.frames
        primer = self.encode(request.frames, request.tokens, self.takes)
        if given is not None:
            check_steps(self.takes, len(primer), limits)
        piece = self.music.generate(
            primer, request.length, float(request.temperature), request.seed
        )
        with tempfile.TemporaryDirectory() as folder:
            path = self.music.write_midi(piece, Path(folder) / "p.mid")
            midi = base64.b64encode(path.read_bytes()).decode()
        return {self.takes: self.decode(piece), "midi_base64": midi}

    def decode(self, piece: torch.Tensor) -> list:
        e = self.encoding
        if e.tokens:
            return [e.tokens[int(i)] for i in piece]
        return [[e.low + int(k) for k in torch.nonzero(f).flatten()] for f in piece]

    # ---- sessions -------------------------------------------------------------------------
    def session_options(self, options: dict) -> dict:
        return top_k_option(options)

    def open(self, options: dict) -> Any:
        return self.music.open_stream()

    def restore(self, options: dict, data: bytes) -> Any:
        return self.music.restore_stream(data)

    def parse(self, stream: Any, inputs, limits: Limits) -> Chunk:
        x = self.encode(inputs if self.takes == "frames" else None, inputs, self.takes)
        check_steps(self.takes, len(x), limits)
        if stream.steps == 0:
            x = torch.cat([self.start(), x])
        return Chunk(x, (self.takes, tuple(x.shape)))

    def step(self, streams: list[Any], chunks: list, options: list[dict]) -> list[dict]:
        outs = type(streams[0]).feed_together(streams, chunks)
        replies = []
        for out, opts in zip(outs, options, strict=True):
            p = out[-1].exp()
            if self.encoding.tokens:
                top = p.topk(min(opts["top_k"], len(p)))
                pairs = zip(top.indices.tolist(), top.values.tolist(), strict=True)
                replies.append(
                    {"next": [{"token": self.encoding.tokens[i], "p": q} for i, q in pairs]}
                )
            else:
                keys = torch.nonzero(p > SOUNDING).flatten().tolist()
                sounding = [{"pitch": self.encoding.low + k, "p": float(p[k])} for k in keys]
                replies.append({"next": sorted(sounding, key=lambda d: -d["p"])})
        return replies


__all__ = ["MusicModel"]
