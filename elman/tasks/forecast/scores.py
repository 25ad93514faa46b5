r"""Forecast accuracy, point and probabilistic, in the units of the data.

MAE   = mean |y - ŷ|
RMSE  = sqrt(mean (y - ŷ)²)
sMAPE = mean 200 |y - ŷ| / (|y| + |ŷ|)                   (M4's definition, in percent;
                                                           a 0/0 term counts as 0)
MASE  = MAE / mean_t |y_t - y_{t-m}| over the training part (Hyndman & Koehler 2006;
        m = the seasonal period, 1 for none)
coverage = share of y inside [q_lo, q_hi]
pinball  = mean over levels τ of mean max(τ (y - q_τ), (τ - 1)(y - q_τ)); twice its
           average over many levels approximates the CRPS
"""

from __future__ import annotations

import numpy as np

SEASONS = {"h": 24, "H": 24, "D": 7, "B": 5, "W": 52, "MS": 12, "ME": 12, "M": 12, "QS": 4, "QE": 4}


def seasonal_period(freq: str | None) -> int:
    """The usual seasonal period of a pandas frequency string (1 when unknown or yearly)."""
    if not freq:
        return 1
    if freq in ("30min", "30T"):
        return 48
    return SEASONS.get(freq.split("-")[0].lstrip("0123456789"), 1)


def mase_scale(train: np.ndarray, m: int) -> float:
    """The in-sample MAE of the seasonal naive forecast (naive if too short for m)."""
    train = np.asarray(train, dtype=np.float64)
    m = m if len(train) > m else 1
    if len(train) <= m:
        raise ValueError(f"MASE needs more than {m} training values, got {len(train)}")
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    # a series the seasonal naive forecast fits exactly has no error scale: MASE undefined
    return scale if scale > 1e-9 * max(1.0, float(np.abs(train).mean())) else float("nan")


def point_scores(y: np.ndarray, yhat: np.ndarray, scale: float) -> dict[str, float]:
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    err = np.abs(y - yhat)
    denom = np.abs(y) + np.abs(yhat)
    smape = np.where(denom > 0, 200 * err / np.where(denom > 0, denom, 1), 0.0)
    return {
        "mae": float(err.mean()),
        "rmse": float(np.sqrt(((y - yhat) ** 2).mean())),
        "smape": float(smape.mean()),
        "mase": float(err.mean() / scale),
    }


def interval_scores(
    y: np.ndarray, quantiles: np.ndarray, levels: tuple[float, ...], scale: float
) -> dict[str, float]:
    """Coverage of the outermost interval and the scaled pinball loss; ``quantiles`` (..., L)."""
    y = np.asarray(y, dtype=np.float64)[..., None]
    q = np.asarray(quantiles, dtype=np.float64)
    tau = np.asarray(levels)
    diff = y - q
    pinball = np.maximum(tau * diff, (tau - 1) * diff).mean()
    inside = (y[..., 0] >= q[..., 0]) & (y[..., 0] <= q[..., -1])
    return {
        "coverage": float(inside.mean()),
        "interval": float(tau[-1] - tau[0]),
        "pinball": float(pinball / scale),
    }


__all__ = ["interval_scores", "mase_scale", "point_scores", "seasonal_period"]
