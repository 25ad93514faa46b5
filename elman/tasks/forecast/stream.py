r"""Streaming forecasts: an autoregressive forecaster reads a series one observed value at a
time and gives, after each, the next value's forecast in the series' own units (point and
quantiles at the model's ``levels``) and the anomaly score of the value just observed.

After observing y_t (scaled z_t = (y_t - loc) / scale) the network has read z_1..z_t and
its head gives θ_{t+1}: (μ, σ) or ordered quantiles of the next modelled value u_{t+1}
(z_{t+1} itself, or the step z_{t+1} - z_t for a ``difference`` model). Then

    point_{t+1}   = loc + scale (b_t + point(θ_{t+1}))       point: μ, or the median
    q_{t+1}(τ)    = loc + scale (b_t + Q(τ; θ_{t+1}))         Q: Gaussian quantile, or the
                                                              head's own level
    b_t = z_t for a difference model (the last level), else 0

equal to one pass of ``Forecaster.step_parameters`` over the whole series. The scoring is
``elman.tasks.forecast.anomaly.Reader``'s (its ``Detector``: threshold, adaptive scale, replacement
of flagged values, smoothing); with replacement, a flagged value enters the model as its
forecast, and the next forecast reads that. The first value (the first two for a
difference model) has nothing to be surprised against and scores 0; forecasts start once
the network has read a value (NaN before).

Only one-step-ahead autoregressive models that read the series as one stream can do this:
not the direct mode (it emits a whole horizon from a window at once), not per-window
normalization (it rescales every window by its own context) and not known-future
covariates (the stream takes values alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from elman.tasks.forecast.anomaly import SCORES, STREAMABLE, Detector, Reader
from elman.tasks.streaming import check_lengths, check_together, pack, take, unpack

if TYPE_CHECKING:  # the run imports this module
    from elman.tasks.forecast.run import ForecastRun

WHAT = "forecast stream"
NOTHING = torch.zeros(0)  # no known-future covariates


@dataclass(frozen=True)
class NextSteps:
    """What a forecast stream gives after each of T observed values: the next value's point
    forecast (T,) and quantiles (T, L) at ``levels`` in the series' units (NaN until the
    model has read a value), the observed value's anomaly ``score`` (T,) and ``flagged``
    (T,) (above the detector's threshold)."""

    point: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...]
    score: np.ndarray
    flagged: np.ndarray


def check_streamable(run: ForecastRun, detector: Detector) -> None:
    c = run.config
    if c.mode != "autoregressive":
        raise ValueError(
            f"model: a {c.mode!r}-mode forecaster emits its whole horizon from a context "
            f"window at once and cannot stream step by step; {STREAMABLE}"
        )
    if c.normalize:
        raise ValueError(
            "model: per-window normalization (normalize=True) rescales every window by its "
            f"own context, so the series cannot be read as one stream; {STREAMABLE}"
        )
    if run.future_size:
        raise ValueError(
            "model: it reads known-future covariates (calendar features or user columns) "
            f"and a stream takes values alone; {STREAMABLE}"
        )
    if detector.score == "nll" and c.head != "gaussian":
        raise ValueError(f"detector: score='nll' needs a gaussian head, not {c.head!r}")


def _series_index(run: ForecastRun, name: str | None) -> int:
    if name is None and len(run.names) > 1:
        raise ValueError(
            f"name: the model knows {len(run.names)} series; name one of {run.names[:10]}"
        )
    return run.lookup(name if name is not None else run.names[0])


class ForecastStream:
    """One series read by an autoregressive forecaster, one value (or a chunk) at a time.

    run: a loaded forecaster (``ForecastRun``: ``SPEC.load(dir)``, or its ``open_stream``);
    name: the series (None for a model of one series); detector: how the anomaly scores are
    made (a score name or an ``anomaly.Detector``; its threshold flags values, None: never)."""

    def __init__(
        self, run: ForecastRun, name: str | None = None, detector: Detector | str = "residual"
    ) -> None:
        detector = Detector(detector) if isinstance(detector, str) else detector
        check_streamable(run, detector)
        self.run, self.model, self.detector = run, run.model, detector
        self.index = _series_index(run, name)
        self.scaler = run.target_scaler(self.index)
        self.reader = Reader(run, self.index, detector)
        self.steps = 0

    def _scaled(self, chunk) -> Tensor:
        values = np.atleast_1d(np.asarray(chunk, dtype=np.float64))
        if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
            raise ValueError(f"chunk: expected finite values (steps,), got {chunk!r}")
        return torch.tensor(self.scaler.scaled(values, "chunk"), dtype=torch.float32)

    def _next(self) -> tuple[float, np.ndarray]:
        """The next value's point forecast and quantiles, in the series' units."""
        levels = self.run.config.levels
        theta = self.reader.theta
        if theta is None:
            return math.nan, np.full(len(levels), math.nan)
        head = self.model.head
        base = float(self.reader.last) if self.run.config.difference else 0.0
        point = base + float(head.point(theta))
        quant = base + head.quantiles(theta, levels).double().numpy()
        return float(self.scaler.inverse(point)), self.scaler.inverse(quant)

    @torch.no_grad()
    def feed(self, chunk: float | Sequence[float] | np.ndarray) -> NextSteps:
        """Feed one observed value or (T,) of them; see ``NextSteps``."""
        return ForecastStream.feed_together([self], [chunk])[0]

    @classmethod
    @torch.no_grad()
    def feed_together(cls, streams: Sequence[ForecastStream], chunks: Sequence) -> list[NextSteps]:
        """Feed one chunk of values to each stream (chunks of one length, streams of one
        model, any series), the network stepping all of them as one batch per value."""
        check_together(streams, chunks)
        zs = [s._scaled(c) for s, c in zip(streams, chunks, strict=True)]
        steps = check_lengths(zs)
        readers = [s.reader for s in streams]
        rows: list[list[tuple]] = [[] for _ in streams]
        for k in range(steps):
            _advance([r for r in readers if r.ready and r.theta is None])  # after a restore
            seen = [r.observe(z[k]) for r, z in zip(readers, zs, strict=True)]
            _advance([r for r in readers if r.ready])
            for i, s in enumerate(streams):
                rows[i].append((*s._next(), *seen[i]))
        levels = streams[0].run.config.levels
        out = []
        for s, got in zip(streams, rows, strict=True):
            point, quant, score, flagged = zip(*got, strict=True)
            s.steps += steps
            out.append(
                NextSteps(
                    np.array(point), np.stack(quant), levels, np.array(score), np.array(flagged)
                )
            )
        return out

    def to_bytes(self) -> bytes:
        """The reader's state (recurrent state, last values, θ of the next value, running
        scale and level), the series and the detector as safetensors bytes."""
        d = self.detector
        threshold = math.nan if d.threshold is None else d.threshold
        detector = {
            "detector.score": torch.tensor(SCORES.index(d.score)),
            "detector.threshold": torch.tensor(threshold, dtype=torch.float64),
            "detector.adapt": torch.tensor(d.adapt, dtype=torch.float64),
            "detector.replace": torch.tensor(d.replace),
            "detector.smooth": torch.tensor(d.smooth),
        }
        own = {"series": torch.tensor(self.index), "steps": torch.tensor(self.steps)}
        return pack(
            {f"reader.{k}": v for k, v in self.reader.state_dict().items()} | detector | own
        )

    @classmethod
    def from_bytes(cls, run: ForecastRun, data: bytes) -> ForecastStream:
        """A stream of ``run`` that continues where ``to_bytes`` left one."""
        tensors = unpack(data, WHAT)
        index = int(take(tensors, "series", ()))
        if not 0 <= index < len(run.names):
            raise ValueError(f"series: id {index} is not one of the model's {len(run.names)}")
        threshold = float(take(tensors, "detector.threshold", ()))
        score = int(take(tensors, "detector.score", ()))
        if not 0 <= score < len(SCORES):
            raise ValueError(f"detector.score: id {score} is not one of {SCORES}")
        detector = Detector(
            SCORES[score],
            None if math.isnan(threshold) else threshold,
            float(take(tensors, "detector.adapt", ())),
            bool(take(tensors, "detector.replace", ())),
            int(take(tensors, "detector.smooth", ())),
        )
        stream = cls(run, run.names[index], detector)
        reader = {k[7:]: v for k, v in tensors.items() if k.startswith("reader.")}
        _check_reader(run, reader)
        stream.reader.load_state_dict(reader)
        stream.steps = int(take(tensors, "steps", ()))
        return stream


def _advance(readers: list[Reader]) -> None:
    if readers:
        Reader.advance_together(readers, [NOTHING] * len(readers))


def _check_reader(run: ForecastRun, tensors: dict[str, Tensor]) -> None:
    """The stored reader state has the shapes this model's reader carries."""
    zero = run.model.rnn.zero_state(1)
    if any(f"rnn.{i}" in tensors for i in range(len(zero))):  # absent: nothing read yet
        for i, ref in enumerate(zero):
            take(tensors, f"rnn.{i}", tuple(ref.shape))
    if "theta" in tensors:
        take(tensors, "theta", (run.model.head.width,))
    for key in ("scale", "replaced"):
        take(tensors, key, ())


__all__ = ["ForecastStream", "NextSteps", "check_streamable"]
