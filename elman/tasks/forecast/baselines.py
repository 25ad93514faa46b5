"""Statistical forecasting baselines, printed beside every forecaster in benchmarks.

naive:           ŷ_{t+h} = y_t
seasonal naive:  ŷ_{t+h} = y_{t+h-m⌈h/m⌉}
ETS:             statsmodels' ETSModel, the lowest-AIC of error {add, mul} x trend {none,
                 add, damped add} x season {none, add, mul} (multiplicative parts only for
                 positive data, seasonal ones only with two full seasons of history)
ARIMA:           pmdarima's auto_arima (stepwise AIC search over statsmodels' SARIMAX;
                 seasonal with period m when 1 < m <= MAX_SEASONAL_ARIMA; for longer
                 seasons, e.g. weekly (52) or half-hourly (48) data, whose seasonal ARIMA
                 takes minutes per fit, a non-seasonal ARIMA with Fourier terms
                 sin(2πkt/m), cos(2πkt/m), k = 1..K as regressors, K in FOURIER_ORDERS by AIC:
                 Hyndman & Athanasopoulos' dynamic harmonic regression)

Each takes the history up to the origin and returns the point forecast (H,) and the
(lower, upper) bounds (H, 2) of the central interval of ``coverage`` (naive intervals: the
empirical quantiles of the in-sample h-step naive errors). ETS and ARIMA are optional
extras (``pip install 'elman[series]'``); long histories are cut to their last
``MAX_HISTORY_SEASONS`` seasons (at least ``MAX_HISTORY`` values) to bound fitting time.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

MAX_HISTORY = 600
MAX_HISTORY_SEASONS = 12
MAX_SEASONAL_ARIMA = 24
FOURIER_ORDERS = (1, 3, 5)
BASELINES = ("naive", "seasonal_naive", "ets", "arima")


def _history(y: np.ndarray, m: int) -> np.ndarray:
    keep = max(MAX_HISTORY, MAX_HISTORY_SEASONS * m)
    return np.asarray(y, dtype=np.float64)[-keep:]


def _empirical(y: np.ndarray, point: np.ndarray, lag: Callable[[int], int], coverage: float):
    """Intervals from the in-sample errors of the same rule at each horizon step."""
    lo_q, hi_q = (1 - coverage) / 2, (1 + coverage) / 2
    bounds = []
    for h, p in enumerate(point, 1):
        k = lag(h)
        errors = y[k:] - y[:-k] if len(y) > k else np.zeros(1)
        bounds.append(p + np.quantile(errors, [lo_q, hi_q]))
    return np.array(bounds)


def naive(y: np.ndarray, horizon: int, m: int = 1, coverage: float = 0.8):
    point = np.full(horizon, float(y[-1]))
    return point, _empirical(np.asarray(y, float), point, lambda h: h, coverage)


def seasonal_naive(y: np.ndarray, horizon: int, m: int = 1, coverage: float = 0.8):
    y = np.asarray(y, dtype=np.float64)
    if m <= 1 or len(y) < m:
        return naive(y, horizon, 1, coverage)
    point = np.array([y[len(y) - m + (h - 1) % m] for h in range(1, horizon + 1)])
    return point, _empirical(y, point, lambda h: m * ((h - 1) // m + 1), coverage)


def ets(y: np.ndarray, horizon: int, m: int = 1, coverage: float = 0.8):
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = pd.Series(_history(y, m))  # statsmodels' prediction frames need an index
    positive = bool((y > 0).all())
    best = None
    for error in ("add", "mul") if positive else ("add",):
        for trend, damped in ((None, False), ("add", False), ("add", True)):
            seasons = [None]
            if m > 1 and len(y) >= 2 * m:
                seasons += ["add", "mul"] if positive else ["add"]
            for seasonal in seasons:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        fit = ETSModel(
                            y,
                            error=error,
                            trend=trend,
                            damped_trend=damped,
                            seasonal=seasonal,
                            seasonal_periods=m if seasonal else None,
                        ).fit(disp=False)
                    except (ValueError, np.linalg.LinAlgError):
                        continue
                if np.isfinite(fit.aic) and (best is None or fit.aic < best.aic):
                    best = fit
    if best is None:
        return naive(y, horizon, m, coverage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = best.get_prediction(len(y), len(y) + horizon - 1).summary_frame(1 - coverage)
    return frame["mean"].to_numpy(), frame[["pi_lower", "pi_upper"]].to_numpy()


def arima(y: np.ndarray, horizon: int, m: int = 1, coverage: float = 0.8):
    import pmdarima

    y = _history(y, m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if m > MAX_SEASONAL_ARIMA:
            return _harmonic_arima(y, horizon, m, coverage)
        model = pmdarima.auto_arima(
            y, m=m if m > 1 else 1, seasonal=m > 1, suppress_warnings=True, error_action="ignore"
        )
        point, bounds = model.predict(horizon, return_conf_int=True, alpha=1 - coverage)
    return np.asarray(point), np.asarray(bounds)


def fourier(steps: np.ndarray, m: int, k: int) -> np.ndarray:
    """(T, 2k) Fourier terms sin(2πjt/m), cos(2πjt/m), j = 1..k, at integer ``steps`` t."""
    angle = 2 * np.pi * np.outer(steps, np.arange(1, k + 1)) / m
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)


def _harmonic_arima(y: np.ndarray, horizon: int, m: int, coverage: float):
    import pmdarima

    past, future = np.arange(len(y)), np.arange(len(y), len(y) + horizon)
    best, best_k = None, 0
    for k in FOURIER_ORDERS:
        if 2 * k >= m:
            break
        model = pmdarima.auto_arima(
            y, X=fourier(past, m, k), seasonal=False, suppress_warnings=True, error_action="ignore"
        )
        if best is None or model.aic() < best.aic():
            best, best_k = model, k
    point, bounds = best.predict(
        horizon, X=fourier(future, m, best_k), return_conf_int=True, alpha=1 - coverage
    )
    return np.asarray(point), np.asarray(bounds)


FORECASTERS = {"naive": naive, "seasonal_naive": seasonal_naive, "ets": ets, "arima": arima}


def baseline(name: str):
    """The baseline ``name`` (``BASELINES``)."""
    if name not in FORECASTERS:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}; got {name!r}")
    return FORECASTERS[name]


__all__ = ["BASELINES", "arima", "baseline", "ets", "fourier", "naive", "seasonal_naive"]
