"""A unidirectional speech model fed audio as it arrives: each chunk of samples (any size)
extends the features (``FeatureStream``: the frames equal the whole utterance's), runs the
new frames through the recurrent state, and returns the partial transcript so far, which is
the whole utterance's greedy transcript once every sample has been fed.

    stream = run.open_stream()
    stream.feed(samples)        # -> {"text": ..., "frames": ..., "seconds": ...}
    stream.words()              # (word, start s, end s) along the alignment so far
    stream.to_bytes() / AsrStream.from_bytes(run, data)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from elman import ctc
from elman.data.speech.features import FeatureStream
from elman.tasks.asr.alphabet import BLANK
from elman.tasks.streaming import (
    State,
    as_model_state,
    as_tuple,
    check_together,
    pack,
    recurrent_layer,
    recurrent_state,
    take,
    unpack,
)

WHAT = "speech stream"


class AsrStream:
    """One utterance's stream through ``run`` (an ``AsrRun`` with a unidirectional model)."""

    def __init__(self, run: Any) -> None:
        self.run, self.model = run, run.model
        self.rnn = recurrent_layer(self.model)
        self.features = FeatureStream(run.config.feature_config())
        self.state: State | None = None
        self.log_probs = torch.zeros(0, len(run.config.alphabet))  # (frames, symbols) so far
        self.samples = 0

    @property
    def steps(self) -> int:
        """Frames read so far."""
        return int(self.log_probs.shape[0])

    def _samples(self, chunk: Tensor | Sequence[float]) -> Tensor:
        x = torch.as_tensor(chunk, dtype=torch.float32)
        if x.ndim != 1:
            raise ValueError(f"chunk: expected 1-D samples (n,), got shape {tuple(x.shape)}")
        limit = self.run.config.max_seconds * self.run.config.rate
        if self.samples + x.numel() > limit:
            raise ValueError(
                f"chunk: the utterance would pass max_seconds={self.run.config.max_seconds}; "
                "open a new stream for the next one"
            )
        return x

    @torch.no_grad()
    def feed(self, chunk: Tensor | Sequence[float]) -> dict:
        """Samples (n,) at the model's rate, n >= 0 -> the transcript so far."""
        return AsrStream.feed_together([self], [chunk])[0]

    @classmethod
    @torch.no_grad()
    def feed_together(cls, streams: Sequence[AsrStream], chunks: Sequence) -> list[dict]:
        """Each stream its chunk. Chunks of audio make different numbers of frames, so each
        stream runs on its own; the results are as if fed alone."""
        check_together(streams, chunks)
        samples = [s._samples(c) for s, c in zip(streams, chunks, strict=True)]
        return [s._feed(x) for s, x in zip(streams, samples, strict=True)]

    def _feed(self, x: Tensor) -> dict:
        frames = self.features.feed(x)
        if frames.shape[0]:
            state = None if self.state is None else as_model_state(self.rnn, self.state)
            log_probs, new = self.model(frames[None], state=state)
            self.state = as_tuple(new)
            self.log_probs = torch.cat([self.log_probs, log_probs[0]])
        self.samples += x.numel()
        return self.result(int(frames.shape[0]))

    def text(self) -> str:
        a = self.run.config.alphabet
        return a.normalise(a.decode(ctc.greedy(self.log_probs, BLANK))) if self.steps else ""

    def words(self) -> list[tuple[str, float, float]]:
        return self.run.word_timings(self.log_probs) if self.steps else []

    def result(self, new_frames: int = 0) -> dict:
        return {
            "text": self.text(),
            "frames": self.steps,
            "new_frames": new_frames,
            "seconds": round(self.samples / self.run.config.rate, 4),
        }

    def to_bytes(self) -> bytes:
        """The recurrent state, the frames' log-probabilities and the feature stream's
        pending samples as safetensors bytes; ``from_bytes`` continues exactly."""
        state = self.state if self.state is not None else self.rnn.zero_state(1)
        f = self.features
        tensors = {f"state.{i}": s for i, s in enumerate(state)}
        tensors |= {
            "log_probs": self.log_probs,
            "pending": f._samples,
            "last": torch.as_tensor(f._last, dtype=torch.float32).reshape(()),
            "skip": torch.tensor(f._skip),
            "frames": f._frames,
            "samples": torch.tensor(self.samples),
            "started": torch.tensor(self.state is not None),
        }
        return pack(tensors)

    @classmethod
    def from_bytes(cls, run: Any, data: bytes) -> AsrStream:
        tensors = unpack(data, WHAT)
        stream = cls(run)
        if bool(take(tensors, "started", ())):
            stream.state = recurrent_state(tensors, stream.rnn)
        symbols = len(run.config.alphabet)
        stream.log_probs = take(tensors, "log_probs")
        if stream.log_probs.ndim != 2 or stream.log_probs.shape[1] != symbols:
            raise ValueError(
                f"log_probs: expected (frames, {symbols}), got {tuple(stream.log_probs.shape)}"
            )
        f = stream.features
        f._samples, f._last = take(tensors, "pending"), take(tensors, "last", ())
        f._skip, f._frames = int(take(tensors, "skip", ())), take(tensors, "frames")
        stream.samples = int(take(tensors, "samples", ()))
        return stream


__all__ = ["AsrStream"]
