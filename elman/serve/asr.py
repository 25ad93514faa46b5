"""Speech recognisers: ``transcribe`` (one or several audio items per request) and, for
unidirectional models, sessions fed audio as it arrives that answer the transcript so far.

Audio comes as base64 in JSON, in one of two formats: "pcm16", raw 16-bit little-endian
mono PCM at the model's rate (``rate`` in model info), or "file", the bytes of any file
libsndfile decodes (WAV, FLAC, OGG...), read from memory, its channels averaged and
resampled to the model's rate. A session's chunks are in the format it was opened with
(option ``format``, "pcm16" by default); fed a file's samples as PCM16 in chunks of any
size, it ends with the whole file's greedy transcript. Lengths are bounded by the model's
``max_seconds`` and the server's ``steps`` limit (read as feature frames); sizes by its
body limit.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor

from elman.data.speech.audio import pcm16_to_float, require, resample
from elman.data.speech.features import frames_for
from elman.serve.config import Limits
from elman.serve.served import Chunk, RequestError, Served, check_count
from elman.tasks.asr.decoding import Decoding
from elman.tasks.asr.run import AsrRun
from elman.tasks.asr.stream import AsrStream

FORMATS = ("pcm16", "file")
MAX_RATE = 384_000  # Hz: a file's sample rate past this is refused (a hostile header)
MAX_CHANNELS = 64
BLOCK = 1 << 16  # frames decoded at a time, then averaged: memory holds one channel's worth


def audio_bytes(text: str, field: str) -> bytes:
    """The bytes of base64 ``text``; malformed or empty is the client's error."""
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError as e:  # binascii.Error, or a character outside ASCII
        raise RequestError(f"{field}: expected standard base64 of audio bytes ({e})") from None
    if not data:
        raise RequestError(f"{field}: expected audio, got none (empty)")
    return data


def pcm16_samples(data: bytes, field: str) -> Tensor:
    if len(data) % 2:
        raise RequestError(
            f"{field}: {len(data)} bytes is not whole samples; expected raw 16-bit "
            "little-endian mono PCM (an even number of bytes)"
        )
    return pcm16_to_float(data)


def file_samples(data: bytes, rate: int, max_seconds: float, field: str) -> Tensor:
    """An audio file's samples at ``rate`` Hz, mono, decoded from memory (nothing is
    written to disk); longer than ``max_seconds`` is refused before decoding it all."""
    sf = require("soundfile")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            native, channels = f.samplerate, f.channels
            if not 1 <= native <= MAX_RATE or not 1 <= channels <= MAX_CHANNELS:
                raise RequestError(
                    f"{field}: a file of {native} Hz and {channels} channel(s); expected at "
                    f"most {MAX_RATE} Hz and {MAX_CHANNELS} channels"
                )
            if f.frames > max_seconds * native:
                _too_long(field, f.frames / native, max_seconds)
            mono = _mono(f, int(max_seconds * native) + 1, field, max_seconds)
    except (sf.SoundFileError, RuntimeError, EOFError) as e:  # libsndfile and header errors
        reason = getattr(e, "error_string", None) or type(e).__name__
        raise RequestError(
            f"{field}: could not be decoded as an audio file ({reason}); expected WAV, FLAC "
            "or OGG bytes (format 'file') or raw 16-bit PCM (format 'pcm16')"
        ) from None
    if not np.isfinite(mono).all():
        raise RequestError(f"{field}: the file holds NaN or infinite samples")
    return torch.from_numpy(resample(mono, native, rate))


def _mono(f: Any, most: int, field: str, max_seconds: float) -> np.ndarray:
    """The file's frames averaged over channels, block by block, stopping past ``most``
    (a header may understate the length)."""
    parts, n = [], 0
    while block := len(part := f.read(BLOCK, dtype="float32", always_2d=True)):
        n += block
        if n >= most:
            _too_long(field, n / f.samplerate, max_seconds, "at least ")
        parts.append(part.mean(axis=1, dtype=np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _too_long(
    field: str, seconds: float, max_seconds: float, bound: str = "", then: str = ""
) -> NoReturn:
    raise RequestError(
        f"{field}: {bound}{seconds:.2f} s of audio, over the model's max_seconds={max_seconds}"
        + then
    )


def words_of(found: list[tuple[str, float, float]]) -> list[dict]:
    return [{"word": w, "start": a, "end": b} for w, a, b in found]


@dataclass
class Listening:
    """A session's stream and the format its chunks come in (``parse`` is not given the
    session's options); saved and restored as the stream alone."""

    stream: AsrStream
    format: str

    @property
    def steps(self) -> int:
        return self.stream.steps

    def to_bytes(self) -> bytes:
        return self.stream.to_bytes()


@dataclass
class Job:
    """A parsed ``transcribe`` request."""

    samples: list[Tensor]
    decoding: Decoding
    timings: bool


class AsrModel(Served):
    """`POST /transcribe` and, for unidirectional models, sessions of audio chunks."""

    endpoints = ("transcribe",)

    def __init__(self, name: str, run: AsrRun) -> None:
        super().__init__(name, run)
        self.asr = run
        try:
            run.open_stream()
            self.takes, self.endpoints = "audio", ("transcribe", "sessions")
        except ValueError as e:  # bidirectional: it reads the whole utterance
            self.why = str(e)

    def info(self) -> dict:
        return super().info() | {"max_seconds": self.asr.config.max_seconds}

    def samples(self, text: str, fmt: str, field: str) -> Tensor:
        """The samples (n,) at the model's rate that base64 ``text`` in ``fmt`` holds."""
        data = audio_bytes(text, field)
        c = self.asr.config
        if fmt == "pcm16":
            return pcm16_samples(data, field)
        if fmt == "file":
            return file_samples(data, c.rate, c.max_seconds, field)
        raise RequestError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")

    def check_length(self, field: str, x: Tensor, before: int, limits: Limits) -> None:
        """An utterance of ``before`` samples, then ``x``: within max_seconds (counted as the
        run counts it), and ``x`` within the server's steps limit in feature frames."""
        c = self.asr.config
        if before + x.numel() > c.max_seconds * c.rate:
            then = "; open a new session for the next utterance" if before else ""
            _too_long(field, (before + x.numel()) / c.rate, c.max_seconds, then=then)
        frames = frames_for(x.numel(), c.feature_config())
        if frames > limits.steps:
            raise RequestError(
                f"{field}: {x.numel() / c.rate:.2f} s of audio is {frames} feature frames, "
                f"over this server's limit of {limits.steps} steps"
            )

    # ---- sessions: the partial transcript so far ------------------------------------------
    def session_options(self, options: dict) -> dict:
        self.check_streams()
        unknown = sorted(set(options) - {"format", "timings"})
        if unknown:
            raise RequestError(f"options: unknown option(s) {unknown}; expected format, timings")
        fmt, timings = options.get("format", "pcm16"), options.get("timings", False)
        if fmt not in FORMATS:
            raise RequestError(f"options.format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
        if not isinstance(timings, bool):
            raise RequestError(f"options.timings: expected true or false, got {timings!r}")
        return {"format": fmt, "timings": timings}

    def open(self, options: dict) -> Listening:
        return Listening(self.asr.open_stream(), options["format"])

    def restore(self, options: dict, data: bytes) -> Listening:
        self.check_streams()
        return Listening(self.asr.restore_stream(data), options["format"])

    def parse(self, stream: Listening, inputs: Any, limits: Limits) -> Chunk:
        if not isinstance(inputs, str):
            raise RequestError(f"audio: expected a base64 string, got {type(inputs).__name__}")
        x = self.samples(inputs, stream.format, "audio")
        if x.numel() == 0:
            raise RequestError("audio: expected audio, got a file of no samples")
        self.check_length("audio", x, stream.stream.samples, limits)
        return Chunk(x, "audio")  # each stream runs alone anyway: any sizes batch together

    def step(self, streams: list[Listening], chunks: list, options: list[dict]) -> list[dict]:
        found = AsrStream.feed_together([s.stream for s in streams], chunks)
        for s, reply, opts in zip(streams, found, options, strict=True):
            if opts["timings"]:
                reply["words"] = words_of(s.stream.words())
        return found

    # ---- transcribe -----------------------------------------------------------------------
    def parse_request(self, endpoint: str, body: Any, limits: Limits) -> Job:
        if endpoint != "transcribe":
            return super().parse_request(endpoint, body, limits)
        check_count("audio", len(body.audio), limits)
        samples = []
        for i, text in enumerate(body.audio):
            field = f"audio[{i}]"
            x = self.samples(text, body.format, field)
            if x.numel() == 0:
                raise RequestError(f"{field}: expected audio, got a file of no samples")
            self.check_length(field, x, 0, limits)
            if frames_for(x.numel(), self.asr.config.feature_config()) == 0:
                raise RequestError(f"{field}: too short to make one feature frame")
            samples.append(x)
        return Job(samples, Decoding(beam=body.beam), body.timings)

    def answer(self, endpoint: str, jobs: list[Job]) -> list[dict]:
        return [{"transcripts": self.transcripts(job)} for job in jobs]

    def transcripts(self, job: Job) -> list[dict]:
        rows = self.asr.transcribe(job.samples, job.decoding, job.timings)
        for row in rows:
            if "words" in row:
                row["words"] = words_of(row["words"])
        return rows


__all__ = ["AsrModel", "Listening", "audio_bytes", "file_samples", "pcm16_samples"]
