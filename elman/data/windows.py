"""Sliding windows over series, and calendar features as known-future covariates.

A window at origin t (the last observed step) reads the context x[t-C+1 .. t] and targets
x[t+1 .. t+H]. ``window_origins`` lists the origins where both fit, every ``stride`` steps,
optionally only those whose targets end at or before ``last`` (no window crosses into held-
out data).
"""

from __future__ import annotations

import numpy as np

CALENDAR = ("hour", "dayofweek", "dayofmonth", "month")
PERIODS = {"hour": 24, "dayofweek": 7, "dayofmonth": 31, "month": 12}
FIELDS = {"hour": "hour", "dayofweek": "day_of_week", "dayofmonth": "day", "month": "month"}


def window_origins(
    length: int, context: int, horizon: int, stride: int = 1, last: int | None = None
) -> np.ndarray:
    """Origins t with context x[t-C+1..t] and targets x[t+1..t+H] inside the series (and
    t + H <= ``last`` when given)."""
    for name, value in (("context", context), ("horizon", horizon), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    end = length - 1 if last is None else min(last, length - 1)
    if end - horizon < context - 1:
        raise ValueError(
            f"{max(end + 1, 0)} usable steps, fewer than context + horizon = {context} + "
            f"{horizon} = {context + horizon}: lower the context or the horizon"
        )
    return np.arange(end - horizon, context - 2, -stride)[::-1]


def windows(x: np.ndarray, origins: np.ndarray, context: int, horizon: int):
    """(contexts (N, C, ...), targets (N, H, ...)) of ``x`` (T, ...) at ``origins``."""
    ctx = np.stack([x[t - context + 1 : t + 1] for t in origins])
    tgt = np.stack([x[t + 1 : t + 1 + horizon] for t in origins])
    return ctx, tgt


def calendar_features(time: np.ndarray, freq: str | None, which=None) -> np.ndarray:
    """(T, 2k) sine/cosine encodings of the calendar fields that vary at ``freq`` (hour of day
    for sub-daily data, day of week and of month for daily or finer, month for monthly or
    finer). Integer steps have no calendar: (T, 0)."""
    if not np.issubdtype(np.asarray(time).dtype, np.datetime64):
        return np.zeros((len(time), 0))
    import pandas as pd

    index = pd.DatetimeIndex(time)
    if which is None:
        step = pd.tseries.frequencies.to_offset(freq) if freq else None
        nanos = pd.Timedelta(step).value if step is not None and _fixed(step) else None
        day = pd.Timedelta(days=1).value
        which = [f for f, keep in _fields(nanos, freq, day).items() if keep]
    cols = []
    for name in which:
        if name not in CALENDAR:
            raise ValueError(f"calendar field must be one of {', '.join(CALENDAR)}; got {name!r}")
        angle = 2 * np.pi * np.asarray(getattr(index, FIELDS[name])) / PERIODS[name]
        cols += [np.sin(angle), np.cos(angle)]
    return np.stack(cols, 1) if cols else np.zeros((len(time), 0))


def _fixed(step) -> bool:
    try:
        import pandas as pd

        pd.Timedelta(step)
        return True
    except (ValueError, TypeError):
        return False


def _fields(nanos: int | None, freq: str | None, day: int) -> dict[str, bool]:
    monthly_or_coarser = nanos is None  # months, quarters, years have no fixed length
    yearly = bool(freq) and freq.upper().startswith(("Y", "A"))
    return {
        "hour": nanos is not None and nanos < day,
        "dayofweek": nanos is not None and nanos <= day,
        "dayofmonth": nanos is not None and nanos <= day,
        "month": not yearly and (monthly_or_coarser or nanos <= 7 * day),
    }


__all__ = ["CALENDAR", "calendar_features", "window_origins", "windows"]
