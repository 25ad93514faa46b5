r"""Anomaly detection by surprise under a one-step-ahead autoregressive forecaster.

    residual score:  r_t = |z_t - μ_t| / σ_t      σ_t = (q_hi - q_lo) / (Φ⁻¹(hi) - Φ⁻¹(lo))
                                                    for a quantile head
    nll score:       r_t = -log p(z_t | θ_t)       (Gaussian head)
    adaptive scale:  s_t = r_t / √v_{t-1}        v_t = (1 - α) v_{t-1} + α min(r_t², c² v_{t-1})
                                                    v_0 = 1, c = 3
    smoothing:       s̄_t = (1 - β) s̄_{t-1} + β s_t    β = 2 / (span + 1), s̄ = s at the first
    flag:            s_t > threshold, fitted on the scores of training data by a rule:
      quantile:      the ``quantile`` of the training scores
      pot:           peaks over threshold (Siffer et al. 2017): a generalized Pareto G(γ, σ)
                     fitted to the excesses over t₀ (the ``quantile``), extrapolated to risk q
                     t = t₀ + (σ/γ)((q n / N_t)^(-γ) - 1)     (t₀ - σ log(q n / N_t) if γ = 0)

The model reads the series once, from a zero state, carrying its state from step to step;
the first step (the first two for a model of differences) has nothing to be surprised
against and scores 0. A forecast stream (``elman.tasks.forecast.stream.ForecastStream``) does
the same one observation at a time with O(1) memory (the recurrent state, the last value or
two and v), so batch and streaming scores agree.

Two choices of ``Detector`` make the scores robust, at the price of reading step by step:
- ``adapt`` (α > 0, residual score): the model's σ was learned on the training part; a series
  whose noise grows later (drift) would otherwise flag every step. v tracks the recent
  squared residual, clipped at 3 running standard deviations so that an outlier barely
  moves it while noise that keeps growing still does; only what is surprising *now*
  scores high.
- ``replace`` (with a threshold): a flagged value enters the model's input as the model's
  own forecast, so one outlier does not corrupt the next predictions (with differences the
  return from a spike is itself a jump, and would be flagged too). Only the first of a run
  of flags is replaced: a second one in a row is read as observed, so a real level shift
  is accepted after one step instead of the model running free on its own forecasts.
- ``smooth`` (span > 1): scores averaged over the recent past, for collective anomalies (a
  stretch of abnormal beats) whose single steps are only mildly surprising; point anomalies
  want span 1, since smoothing smears a spike over the steps after it.
Thresholds are fitted on training data scored without replacement (nothing is flagged yet).

Metrics against 0/1 labels: precision, recall and F1 point by point, and point-adjusted
(a labelled segment counts as found in full when any of its points is flagged: Xu et al.
2018's convention, which flatters detectors; both are reported); PR-AUC is the average
precision of the raw scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from itertools import accumulate
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from elman.data.series import Series
from elman.tasks.forecast.anomaly_metrics import average_precision, detection_scores
from elman.tasks.forecast.data import Prepared, modelled
from elman.tasks.streaming import as_model_state, as_tuple, row, stack
from elman.train.evaluation import evaluating

if TYPE_CHECKING:  # the run imports this module
    from elman.tasks.forecast.run import ForecastRun

SCORES = ("residual", "nll")
CLIP = 3.0  # running standard deviations an outlier may add to the running scale
THRESHOLDS = ("quantile", "pot")
MIN_PEAKS = 10
DEFAULT_RISK = 1e-3
# how to get a model that detection and streams can read (named in every refusal)
STREAMABLE = (
    "train it with `elman train forecast --streamable` (autoregressive, --no-normalize, "
    "--no-calendar, no --future-covariates)"
)


@dataclass(frozen=True)
class Detector:
    """How surprise becomes scores and flags (see the module's equations).

    score: "residual" or "nll". threshold: flag scores above it (None: score only).
    adapt: α of the running residual scale (0: off; residual score only). replace: a flagged
    value enters the model's input as its forecast (needs a threshold to act). smooth: span
    of the scores' exponential moving average (1: off).
    """

    score: str = "residual"
    threshold: float | None = None
    adapt: float = 0.0
    replace: bool = True
    smooth: int = 1

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}; got {self.score!r}")
        if isinstance(self.adapt, bool) or not isinstance(self.adapt, int | float):
            raise TypeError(f"adapt must be a number in [0, 1), got {self.adapt!r}")
        if not 0 <= self.adapt < 1:
            raise ValueError(f"adapt must be in [0, 1), got {self.adapt!r}")
        if self.adapt and self.score != "residual":
            raise ValueError(f"adapt rescales residuals: use score='residual', not {self.score!r}")
        if isinstance(self.smooth, bool) or not isinstance(self.smooth, int) or self.smooth < 1:
            raise ValueError(f"smooth must be an integer span >= 1, got {self.smooth!r}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be a finite number, got {self.threshold!r}")

    @property
    def sequential(self) -> bool:
        """Whether scores depend on earlier flags or scores (no one-pass batch form)."""
        return bool(self.adapt) or (self.replace and self.threshold is not None)


def _detector(detector: Detector | str) -> Detector:
    return Detector(detector) if isinstance(detector, str) else detector


def _check(run: ForecastRun, detector: Detector) -> None:
    if run.config.mode != "autoregressive":
        raise ValueError(
            f"anomaly scores need an autoregressive model (mode='autoregressive'): {STREAMABLE}"
        )
    if run.config.normalize:
        raise ValueError(
            "anomaly scores read the series as one stream, and this model rescales every "
            f"window by its own context (normalize=True): {STREAMABLE}"
        )
    if detector.score == "nll" and run.config.head != "gaussian":
        raise ValueError("score='nll' needs a gaussian head; use score='residual'")


def surprise(run: ForecastRun, theta: Tensor, z: Tensor, score: str) -> Tensor:
    """Scores of scaled values ``z`` (...) under one-step parameters ``theta`` (..., P)."""
    head = run.model.head
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
def scores(run: ForecastRun, s: Series, detector: Detector | str = "residual") -> np.ndarray:
    """(T,) scores of every value of ``s`` (the first scores 0); ``detector`` may be a score
    name."""
    detector = _detector(detector)
    _check(run, detector)
    data = run.prepare(s)
    if detector.sequential:
        reader = Reader(run, data.index, detector)
        return np.array([reader.step(data.z[t], data.future[t])[0] for t in range(len(data.z))])
    return _scores(run, data, detector)


def _scores(run: ForecastRun, data: Prepared, detector: Detector) -> np.ndarray:
    model, diff = run.model, run.config.difference
    with evaluating(model) as to_model:
        z, future, ids = to_model((data.z[None], data.future[None], torch.tensor([data.index])))
        u, future = modelled(z, future, diff)
        theta, _ = model.step_parameters(u[:, :-1], future[:, 1:], ids)
        out = surprise(run, theta[0], u[0, 1:], detector.score).double().cpu().numpy()
    return np.concatenate([np.zeros(1 + diff), ewma(out, detector.smooth)])


def ewma(values: np.ndarray, span: int) -> np.ndarray:
    """The exponential moving average of ``values`` with ``span`` (1: the values)."""
    if span == 1:
        return np.asarray(values, dtype=np.float64)
    return np.array(list(accumulate(values, partial(smoothed, span))), dtype=np.float64)


def smoothed(span: int, level: float | None, score: float) -> float:
    """One step of the scores' exponential moving average (``level`` None: the first)."""
    if level is None:
        return score
    beta = 2 / (span + 1)
    return (1 - beta) * level + beta * score


def fit_threshold(
    run: ForecastRun,
    series: list[Series],
    quantile: float = 0.99,
    detector: Detector | str = "residual",
    rule: str = "quantile",
    risk: float = 1e-3,
) -> float:
    """The threshold ``rule`` gives on the scores of ``series`` (training data: never the
    test part), scored with ``detector`` less its threshold (see ``threshold_of``)."""
    check_rule(rule, quantile, risk)
    plain = replace(_detector(detector), threshold=None)
    pooled = np.concatenate([scores(run, s, plain)[1:] for s in series])
    return threshold_of(pooled, rule, quantile, risk)


def threshold_of(
    values: np.ndarray, rule: str = "quantile", quantile: float = 0.99, risk: float = 1e-3
) -> float:
    """A threshold from anomaly-free scores: their ``quantile``, or ("pot") the score a
    generalized Pareto tail fitted above that quantile exceeds with probability ``risk``."""
    check_rule(rule, quantile, risk)
    values = np.asarray(values, dtype=np.float64)
    start = float(np.quantile(values, quantile))
    if rule == "quantile":
        return start
    excess = values[values > start] - start
    if len(excess) < MIN_PEAKS:
        raise ValueError(
            f"pot: {len(excess)} training scores above the {quantile} quantile; a tail fit "
            f"needs at least {MIN_PEAKS} (lower quantile or score more training data)"
        )
    from scipy.stats import genpareto  # the series extra's dependency

    gamma, _, sigma = genpareto.fit(excess, floc=0)
    ratio = risk * len(values) / len(excess)
    if abs(gamma) < 1e-8:
        return start - sigma * math.log(ratio)
    return start + sigma / gamma * (ratio**-gamma - 1)


def check_rule(rule: str, quantile: float, risk: float | None = DEFAULT_RISK) -> None:
    """Refuse a threshold rule, quantile or risk (pot only; None: not given) out of range."""
    if rule not in THRESHOLDS:
        raise ValueError(f"rule must be one of {', '.join(THRESHOLDS)}; got {rule!r}")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    if rule == "pot" and risk is not None and not 0 < risk < 1 - quantile:
        raise ValueError(f"risk must be in (0, 1 - quantile) = (0, {1 - quantile:g}), got {risk!r}")


class Reader:
    """The step-by-step scorer behind sequential batch scoring and the forecast stream
    (``elman.tasks.forecast.stream``): one series, scaled values z_t with their known-future
    covariates f_t.

    A step has two halves: advancing feeds the last modelled value (and f_t) to the network
    and keeps θ_t, the parameters of the next value; ``observe`` scores z_t against them.
    ``step`` does both; a forecast stream advances right after observing, so θ is ready (and
    reported) before the next value arrives, and ``step`` then uses it instead of advancing
    twice. ``advance_together`` advances many readers of one model as one batch."""

    def __init__(self, run: ForecastRun, index: int, detector: Detector) -> None:
        self.run, self.detector = run, detector
        self.ids = torch.tensor([index])
        self.state, self.last, self.previous, self.scale = None, None, None, 1.0
        self.replaced, self.level = False, None
        self.theta: Tensor | None = None  # (P,) parameters of the next value, once advanced

    @property
    def ready(self) -> bool:
        """Whether the network has a value to read (and so can give θ for the next one)."""
        return self.previous is not None

    def step(self, z: Tensor, future: Tensor) -> tuple[float, bool]:
        """Score of scaled ``z`` () given f_t ``future`` (F,), and whether it is flagged."""
        if self.ready and self.theta is None:
            Reader.advance_together([self], [future])
        return self.observe(z)

    @staticmethod
    def advance_together(readers: list[Reader], futures: list[Tensor]) -> None:
        """Advance every reader (all ``ready``, of one model) in one batched network step:
        each feeds its last modelled value with the next value's f (F,) and keeps θ (P,)."""
        model = readers[0].run.model.eval()
        rnn = model.rnn
        zero = rnn.zero_state(1)
        batch = stack([zero if r.state is None else as_tuple(r.state) for r in readers])
        lagged = torch.stack([r.previous.reshape(1) for r in readers])  # (B, 1)
        future = torch.stack([f.reshape(1, -1) for f in futures])  # (B, 1, F)
        ids = torch.cat([r.ids for r in readers])
        theta, new = model.step_parameters(lagged, future, ids, as_model_state(rnn, batch))
        for i, r in enumerate(readers):
            r.state, r.theta = as_model_state(rnn, row(as_tuple(new), i)), theta[i, 0]

    def observe(self, z: Tensor) -> tuple[float, bool]:
        """Score scaled ``z`` () against θ from ``advance`` (absent before the first values)."""
        u, last = z, self.last
        if self.run.config.difference:
            self.last = z
            if last is None:
                return 0.0, False
            u = z - last  # the network reads and predicts steps
        if self.previous is None:
            self.previous = u
            return 0.0, False
        d, model = self.detector, self.run.model
        theta, self.theta = self.theta, None
        assert theta is not None, "advance_together() before observe()"
        r = float(surprise(self.run, theta, u, d.score))
        s = r / math.sqrt(self.scale) if d.adapt else r
        if d.smooth > 1:
            s = self.level = smoothed(d.smooth, self.level, s)
        flagged = d.threshold is not None and s > d.threshold
        replace_it = flagged and d.replace and not self.replaced
        self.replaced = replace_it  # the second flag in a row is taken as a new level
        if replace_it:
            u = model.head.point(theta)
            if self.run.config.difference:
                self.last = last + u  # the level the forecast implies, for the next step
        if d.adapt:  # clipped, so one outlier cannot inflate the scale (a Huber-style update)
            clipped = min(r * r, CLIP * CLIP * self.scale)
            self.scale = (1 - d.adapt) * self.scale + d.adapt * clipped
        self.previous = u
        return s, flagged

    def state_dict(self) -> dict[str, Tensor]:
        """Everything ``step`` carries, as tensors (absent entries were not set yet)."""
        rnn = self.state if isinstance(self.state, tuple) or self.state is None else (self.state,)
        out = {f"rnn.{i}": s.contiguous() for i, s in enumerate(rnn or ())}
        for key in ("last", "previous"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key).reshape(())
        out["scale"] = torch.tensor(self.scale, dtype=torch.float64)
        out["replaced"] = torch.tensor(self.replaced)
        if self.level is not None:
            out["level"] = torch.tensor(self.level, dtype=torch.float64)
        if self.theta is not None:
            out["theta"] = self.theta.contiguous()
        return out

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        rnn = tuple(tensors[f"rnn.{i}"] for i in range(2) if f"rnn.{i}" in tensors)
        lstm = self.run.model.rnn.config.mode == "LSTM"
        self.state = None if not rnn else (rnn if lstm else rnn[0])
        self.last, self.previous = tensors.get("last"), tensors.get("previous")
        self.scale, self.replaced = float(tensors["scale"]), bool(tensors["replaced"])
        self.level = float(tensors["level"]) if "level" in tensors else None
        self.theta = tensors.get("theta")


__all__ = [
    "SCORES",
    "STREAMABLE",
    "Detector",
    "Reader",
    "average_precision",
    "check_rule",
    "detection_scores",
    "ewma",
    "fit_threshold",
    "scores",
    "surprise",
    "threshold_of",
]
