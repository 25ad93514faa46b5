r"""Anomaly detection by surprise under a one-step-ahead autoregressive forecaster.

    residual score:  s_t = |z_t - μ_t| / σ_t      σ_t = (q_hi - q_lo) / (Φ⁻¹(hi) - Φ⁻¹(lo))
                                                    for a quantile head
    nll score:       s_t = -log p(z_t | θ_t)       (Gaussian head)
    flag:            s_t > threshold, the ``quantile`` of the scores on training data

The model reads the series once, from a zero state, carrying its state from step to step;
the first step (the first two for a model of differences) has nothing to be surprised
against and scores 0. ``Stream`` does the same one observation at a time with O(1) memory
(the recurrent state and the last value or two), so batch and streaming scores agree.

Metrics against 0/1 labels: precision, recall and F1 point by point, and point-adjusted
(a labelled segment counts as found in full when any of its points is flagged: Xu et al.
2018's convention, which flatters detectors; both are reported); PR-AUC is the average
precision of the raw scores.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from elman.data.series import Series
from elman.tasks.forecast import Prepared, modelled
from elman.tasks.forecast_runs import Trained

SCORES = ("residual", "nll")


def _check(trained: Trained, score: str) -> None:
    if trained.config.mode != "autoregressive":
        raise ValueError("anomaly scores need an autoregressive model (mode='autoregressive')")
    if trained.config.normalize:
        raise ValueError(
            "anomaly scores read the series as one stream: train the model with "
            "normalize=False (--no-normalize), not per-window normalization"
        )
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
    if score == "nll" and trained.config.head != "gaussian":
        raise ValueError("score='nll' needs a gaussian head; use score='residual'")


def surprise(trained: Trained, theta: torch.Tensor, z: torch.Tensor, score: str) -> torch.Tensor:
    """Scores of scaled values ``z`` (...) under one-step parameters ``theta`` (..., P)."""
    head = trained.model.head
    if head.kind == "gaussian":
        mu, sigma = theta[..., 0], theta[..., 1]
        if score == "nll":
            return torch.log(sigma) + 0.5 * ((z - mu) / sigma) ** 2 + 0.5 * math.log(2 * math.pi)
        return (z - mu).abs() / sigma
    lo, hi = head.levels[0], head.levels[-1]
    spread = NormalDist().inv_cdf(hi) - NormalDist().inv_cdf(lo)
    sigma = ((theta[..., -1] - theta[..., 0]) / spread).clamp(min=1e-6)
    return (z - head.point(theta)).abs() / sigma


@torch.no_grad()
def scores(trained: Trained, s: Series, score: str = "residual") -> np.ndarray:
    """(T,) surprise of every value of ``s`` (the first scores 0)."""
    _check(trained, score)
    data = trained.prepare(s)
    return _scores(trained, data, score)


def _scores(trained: Trained, data: Prepared, score: str) -> np.ndarray:
    model, diff = trained.model.eval(), trained.config.difference
    u, future = modelled(data.z[None], data.future[None], diff)
    theta, _ = model.step_parameters(u[:, :-1], future[:, 1:], torch.tensor([data.index]))
    out = surprise(trained, theta[0], u[0, 1:], score)
    return np.concatenate([np.zeros(1 + diff), out.double().numpy()])


def fit_threshold(
    trained: Trained, series: list[Series], quantile: float = 0.99, score: str = "residual"
) -> float:
    """The ``quantile`` of the scores of ``series`` (training data: never the test part)."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    pooled = np.concatenate([scores(trained, s, score)[1:] for s in series])
    return float(np.quantile(pooled, quantile))


class Stream:
    """One series, one observation at a time: ``step(value)`` -> (score, flagged)."""

    def __init__(self, trained: Trained, name: str, threshold: float, score: str = "residual"):
        _check(trained, score)
        if trained.future_size:
            raise ValueError(
                "streaming takes values alone: this model reads known-future covariates "
                "(calendar features of timestamps, or user columns); train it without them"
            )
        self.trained, self.threshold, self.score = trained, threshold, score
        self.index = trained.lookup(name)
        self.scaler = trained.target_scaler(self.index)
        self.state, self.last, self.previous = None, None, None

    @torch.no_grad()
    def step(self, value: float) -> tuple[float, bool]:
        """The score of ``value`` given everything before it, and whether it is flagged."""
        if not math.isfinite(value):
            raise ValueError(f"value: expected a finite number, got {value!r}")
        z = torch.tensor([[self.scaler.transform(float(value))]], dtype=torch.float32)
        last, self.last = self.last, z
        if self.trained.config.difference:
            if last is None:
                return 0.0, False
            z = z - last  # the network reads and predicts steps
        if self.previous is None:
            self.previous = z
            return 0.0, False
        model = self.trained.model.eval()
        theta, self.state = model.step_parameters(
            self.previous, torch.zeros(1, 1, 0), torch.tensor([self.index]), self.state
        )
        self.previous = z
        s = float(surprise(self.trained, theta[0, 0], z[0, 0], self.score))
        return s, s > self.threshold


def detection_scores(labels: np.ndarray, flags: np.ndarray, raw: np.ndarray) -> dict[str, float]:
    """Point-wise and point-adjusted precision/recall/F1, and PR-AUC of the raw scores."""
    labels, flags = np.asarray(labels).astype(bool), np.asarray(flags).astype(bool)
    adjusted = flags.copy()
    for start, end in _segments(labels):
        if flags[start:end].any():
            adjusted[start:end] = True
    out = {}
    for name, f in (("point", flags), ("adjusted", adjusted)):
        tp = int((f & labels).sum())
        precision = tp / max(int(f.sum()), 1)
        recall = tp / max(int(labels.sum()), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out |= {f"{name}_precision": precision, f"{name}_recall": recall, f"{name}_f1": f1}
    return out | {"pr_auc": average_precision(labels, raw)}


def _segments(labels: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], labels.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def average_precision(labels: np.ndarray, raw: np.ndarray) -> float:
    """Σ_k (R_k - R_{k-1}) P_k over the scores in descending order (ties broken by order)."""
    labels = np.asarray(labels).astype(bool)
    if not labels.any():
        return float("nan")
    order = np.argsort(-np.asarray(raw, dtype=np.float64), kind="stable")
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / hits.sum())


__all__ = [
    "SCORES",
    "Stream",
    "average_precision",
    "detection_scores",
    "fit_threshold",
    "scores",
    "surprise",
]
