"""Classifiers: stateless requests (each batch of concurrent requests run as one padded
pass) and, for models that read only the past, sessions of class probabilities so far."""

from __future__ import annotations

import torch

from elman.serve.config import Limits
from elman.serve.served import (
    FLOAT32_MAX,
    Chunk,
    RequestError,
    Served,
    check_count,
    check_steps,
    one_of,
    split_back,
)
from elman.tasks.classify.run import ClassifyRun
from elman.tasks.classify.stream import ClassifyStream


class ClassifyModel(Served):
    """`POST /classify` (texts or series, one batched pass per batch of requests), and
    sessions that answer the class probabilities of the sequence so far (unidirectional
    models without the convolutional branch)."""

    endpoints = ("classify",)

    def __init__(self, name: str, run: ClassifyRun) -> None:
        super().__init__(name, run)
        self.classifier = run
        try:
            run.open_stream()
            self.takes = "text" if run.encoder.kind == "text" else "frames"
            self.endpoints = ("classify", "sessions")
        except ValueError as e:  # bidirectional, or the convolutional branch
            self.why = str(e)

    # ---- sessions: the class probabilities of the sequence so far ------------------------
    def open(self, options: dict) -> ClassifyStream:
        return self.classifier.open_stream()

    def restore(self, options: dict, data: bytes) -> ClassifyStream:
        return self.classifier.restore_stream(data)

    def parse(self, stream: ClassifyStream, inputs, limits: Limits) -> Chunk:
        if self.takes == "text":
            x = torch.tensor(self.classifier.encoder.tokenizer.encode(inputs), dtype=torch.int64)
        else:
            try:
                x = torch.tensor(series_values(inputs, "frames"), dtype=torch.float32)
            except (TypeError, ValueError) as e:
                raise RequestError(f"frames: expected rows of numbers ({e})") from None
        check_steps(self.takes, len(x), limits)
        try:
            x = stream.inputs(x)  # shape and range, checked before the batch runs
        except ValueError as e:
            raise RequestError(f"{self.takes}: {e}") from None
        if self.takes == "frames":
            self.check_scaled("frames", x)
        return Chunk(x, (self.takes, tuple(x.shape)))

    def check_scaled(self, field: str, x: torch.Tensor) -> None:
        """Series values (T, C) the network can read: finite once scaled as its training
        data was (NaN marks a missing value; 1e308 overflows float32, 1e38 the scaling)."""
        net = self.classifier.model
        z = (x - net.scale_mean) / net.scale_std
        bad = torch.nonzero(torch.isinf(z) | (torch.isnan(z) & ~torch.isnan(x)))
        if len(bad):
            t, c = bad[0].tolist()
            raise RequestError(
                f"{field}: step {t}, channel {c}: the value is out of the model's range: scaled "
                f"as its training data was it is {float(z[t, c]):g}; the network reads float32"
            )

    def step(self, streams: list, chunks: list, options: list[dict]) -> list[dict]:
        found = ClassifyStream.feed_together(streams, chunks)
        return [self.classifier.labelled(probs[-1].tolist()) for probs in found]

    def parse_request(self, endpoint: str, body, limits: Limits) -> list[torch.Tensor]:
        kind = self.classifier.encoder.kind
        inputs = one_of(body, ("texts", "series"), "texts" if kind == "text" else "series")
        check_count(kind, len(inputs), limits)
        if kind != "text":
            inputs = [series_values(x, f"series[{i}]") for i, x in enumerate(inputs)]
        try:
            encoded = self.classifier.encode(inputs)
        except ValueError as e:
            raise RequestError(str(e)) from None
        for i, x in enumerate(encoded):
            check_steps(f"input {i}", len(x), limits)
            if kind != "text":
                self.check_scaled(f"series[{i}]", x)
        return encoded

    def answer(self, endpoint: str, jobs: list[list[torch.Tensor]]) -> list[dict]:
        rows = self.classifier.predict_encoded([x for job in jobs for x in job])
        return [{"predictions": part} for part in split_back(rows, [len(j) for j in jobs])]


def series_values(x, field: str):
    """Posted series values as the encoder takes them: null marks a missing value (NaN, as
    in files); a number past float32's range is refused here, naming it, since the network
    would read it as infinity."""
    if isinstance(x, list):
        return [series_values(v, field) for v in x]
    if x is None:
        return float("nan")
    if isinstance(x, int | float) and not abs(x) <= FLOAT32_MAX:
        raise RequestError(
            f"{field}: {x!r} is past float32's range ({FLOAT32_MAX:.3g}), which the network reads"
        )
    return x


__all__ = ["ClassifyModel"]
