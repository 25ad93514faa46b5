"""Anomaly detection on a whole file (what ``elman detect`` prints): a threshold fitted on the
scores of the run's own training data, every value of the series scored against it, and, with
0/1 labels, the detection metrics (see ``elman.tasks.forecast.anomaly`` for the scores)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from elman.data.series import Series, read_table
from elman.tasks.forecast.anomaly import (
    DEFAULT_RISK,
    Detector,
    detection_scores,
    fit_threshold,
    scores,
)

if TYPE_CHECKING:  # the run imports the modules this one does
    from elman.tasks.forecast.run import ForecastRun


@dataclass(frozen=True)
class Detection:
    """The fitted ``threshold``, the (T,) ``scores`` of each series (flags: above the
    threshold) and, given labels, the ``metrics`` of the flags (else None)."""

    threshold: float
    scores: list[np.ndarray]
    metrics: dict | None = None


def read_labels(path: str | Path, column: str) -> np.ndarray:
    """The 0/1 labels of ``column`` in the data file (an error naming the columns there)."""
    frame = read_table(path)
    if column not in frame.columns:
        raise ValueError(
            f"--label-col {column!r}: no such column in {path}; it has {list(frame.columns)}"
        )
    labels = frame[column]
    bad = ~labels.isin([0, 1])
    if bool(bad.any()):
        raise ValueError(
            f"--label-col {column!r}: expected 0/1 labels, found {labels[bad].iloc[0]!r} "
            f"in row {int(np.flatnonzero(bad.to_numpy())[0]) + 1}"
        )
    return labels.to_numpy(dtype=int)


def detect(
    run: ForecastRun,
    series: Sequence[Series],
    detector: Detector,
    rule: str = "quantile",
    quantile: float = 0.99,
    risk: float | None = None,
    labels: np.ndarray | None = None,
) -> Detection:
    """Scores of every value of ``series`` by ``detector``, with the threshold ``rule`` fits
    at ``quantile`` (pot: and ``risk``, default ``DEFAULT_RISK``) on the scores of the run's
    training data; ``labels`` (one series): also the metrics of the flags."""
    if labels is not None and len(series) != 1:
        raise ValueError("--label-col scores one series; this file holds several")
    risk = DEFAULT_RISK if risk is None else risk
    threshold = fit_threshold(run, run.training_series(), quantile, detector, rule, risk)
    detector = replace(detector, threshold=threshold)
    raw = [scores(run, s, detector) for s in series]
    if labels is None:
        return Detection(threshold, raw)
    if len(labels) != len(raw[0]):
        raise ValueError(f"--label-col: {len(labels)} labels for {len(raw[0])} values (gaps?)")
    metrics = detection_scores(labels, raw[0] > threshold, raw[0])
    metrics |= {"threshold": threshold, "rule": rule, "quantile": quantile}
    return Detection(threshold, raw, metrics)


__all__ = ["Detection", "detect", "read_labels"]
