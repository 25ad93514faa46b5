"""Training, forecasting and rolling-origin backtesting of forecast models (a trained one is
a ``elman.tasks.forecast.run.ForecastRun``).

Backtesting (``historical forecasts``): the trained model forecasts ``horizon`` steps from
each origin t (the last step it may read) of the series given, origins ``stride`` apart and
ending ``horizon`` steps before the end; every forecast is scored against the values that
followed. MASE's scale is the seasonal naive error on the values up to the first origin.
Every score is out of sample: an origin must lie at or after the last step the model trained
on (``train_end`` in the checkpoint: the validation part and anything later are unseen), so
that none of the values it forecasts were training targets; asking for more origins than fit
there is an error that says how many fit and how to make room.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from elman.data.series import Series, load_series
from elman.tasks.forecast.baselines import baseline
from elman.tasks.forecast.data import (
    NAME,
    ForecastConfig,
    ForecastTask,
    Prepared,
    extend_time,
    modelled,
    window_stats,
)
from elman.tasks.forecast.model import Forecaster
from elman.tasks.forecast.scores import interval_scores, mase_scale, point_scores, seasonal_period
from elman.tasks.rundir import fit_task, resume_run
from elman.train import TrainConfig, seed_everything
from elman.train.evaluation import evaluating

if TYPE_CHECKING:  # the run imports this module
    from elman.tasks.forecast.run import ForecastRun


# ---- forecasting -------------------------------------------------------------------------
def predict(
    model: Forecaster,
    config: ForecastConfig,
    data: Prepared,
    origins: Sequence[int],
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Point forecasts (N, H) and quantiles (N, H, L) at ``config.levels``, in data units,
    for the ``horizon`` steps after each origin. ``data.future`` must reach origin + H."""
    c = config
    for t in origins:
        if t < c.context - 1:
            raise ValueError(f"origin {t}: needs {c.context} values of context before it")
        if t + c.horizon >= len(data.future):
            raise ValueError(
                f"origin {t}: known-future covariates end at step {len(data.future) - 1}, "
                f"before the horizon's last step {t + c.horizon}"
            )
    start = [t - c.context + 1 for t in origins]
    span = c.context + c.horizon
    rows = lambda x, n: torch.stack([x[s : s + n] for s in start])  # noqa: E731
    with evaluating(model) as to_model:
        z, past, future, ids = to_model(
            (data.z, data.past, data.future, torch.full((len(origins),), data.index))
        )
        z_raw = rows(z, c.context)
        loc, scale = window_stats(z_raw, c.normalize)
        z_ctx = (z_raw - loc) / scale
        future = rows(future, span)
        if c.mode == "direct":
            theta = model.horizon_parameters(
                z_ctx, rows(past, c.context), future[:, : c.context], future[:, c.context :], ids
            )
            point, quant = model.head.point(theta), model.head.quantiles(theta, c.levels)
        else:
            point, quant = _sample_paths(model, c, z_ctx, future, ids, seed)
        point, quant = point * scale + loc, quant * scale.unsqueeze(-1) + loc.unsqueeze(-1)
    point, quant = (x.double().cpu().numpy() for x in (point, quant))
    return data.scaler.inverse(point), data.scaler.inverse(quant)


def _sample_paths(model, c: ForecastConfig, z_ctx, future, ids, seed: int):
    """Autoregressive forecasts: ``c.samples`` paths per origin, each drawn value fed back
    (with ``difference``, drawn steps are summed onto the last observed level)."""
    n, k = z_ctx.shape[0], c.samples
    generator = torch.Generator().manual_seed(seed)
    u, fut = modelled(z_ctx, future, c.difference)
    seen = u.shape[1]  # observed steps of the modelled sequence
    _, state = model.step_parameters(u[:, :-1], fut[:, 1:seen], ids)
    expand = lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731
    parts = state if isinstance(state, tuple) else (state,)
    parts = tuple(s.repeat_interleave(k, dim=1) for s in parts)  # (L, N*k, H)
    state = parts if isinstance(state, tuple) else parts[0]
    previous, fut, rep_ids = expand(u[:, -1:]), expand(fut), expand(ids)
    draws = []
    for h in range(c.horizon):
        step = seen + h
        theta, state = model.step_parameters(previous, fut[:, step : step + 1], rep_ids, state)
        previous = model.head.sample(theta, generator)  # (N*k, 1)
        draws.append(previous[:, 0])
    paths = torch.stack(draws, dim=1).view(n, k, c.horizon)
    if c.difference:
        paths = z_ctx[:, -1, None, None] + paths.cumsum(dim=2)  # (n, k, H) levels
    levels = torch.tensor(c.levels, dtype=paths.dtype, device=paths.device)
    return paths.median(dim=1).values, torch.quantile(paths, levels, dim=1).permute(1, 2, 0)


# ---- runs ----------------------------------------------------------------------------------
def load_source(source: dict) -> list[Series]:
    """The series a run's source describes (a file read by ``load_series``)."""
    if source.get("kind") != "file":
        raise ValueError(
            "this run was trained on data given in Python; pass the series again to use it"
        )
    args = {k: v for k, v in source.items() if k != "kind"}
    return load_series(args.pop("path"), **args)


def train(
    series: Sequence[Series],
    config: ForecastConfig,
    train_config: TrainConfig,
    out: str | Path,
    source: dict | None = None,
    valid_steps: int | None = None,
    until: int | None = None,
    epochs: int | None = None,
) -> dict[str, float]:
    """Train a forecaster on ``series`` into ``out``."""
    seed_everything(train_config.seed)
    task = ForecastTask(series, config, train_config.seed, valid_steps, source=source)
    return fit_task(task, train_config, out, until, epochs)


def _task_from_meta(meta: dict) -> ForecastTask:
    info = meta["task_config"]
    return ForecastTask(
        load_source(info["source"]),
        ForecastConfig(**info["model"]),
        info["seed"],
        info["valid_steps"],
        info["scalers"],
        info["source"],
    )


def resume(out: str | Path, steps: int | None = None, until: int | None = None):
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


def future_times(s: Series, horizon: int) -> np.ndarray:
    """The timestamps (or integer steps) of the ``horizon`` steps after the end of ``s``."""
    return extend_time(s, len(s) + horizon)[len(s) :]


def forecast(run: ForecastRun, s: Series, future: np.ndarray | None = None, seed: int = 0):
    """Point forecasts (H,) and quantiles (H, L) for the ``horizon`` steps after the end of
    ``s``; ``future`` (H, Cf): the known-future covariates over those steps (required when
    the model has any besides the calendar)."""
    c, cf = run.config, s.future.shape[1]
    if len(s) < c.context:
        raise ValueError(
            f"series {s.name!r} has {len(s)} rows; a forecast reads the last {c.context} "
            f"(the model's context): give at least {c.context}"
        )
    if cf and (future is None or np.asarray(future).shape != (c.horizon, cf)):
        got = None if future is None else np.asarray(future).shape
        raise ValueError(
            f"future: the model needs the {cf} known-future covariate(s) for the "
            f"{c.horizon} forecast steps, shape ({c.horizon}, {cf}); got {got}"
        )
    extra = np.zeros((c.horizon, cf)) if future is None else np.asarray(future, dtype=float)
    data = run.prepare(s, extra)
    point, quant = predict(run.model, c, data, [len(s) - 1], seed)
    return point[0], quant[0]


def training_end(run: ForecastRun, s: Series) -> int:
    """The position in ``s`` of the last step the model trained on (-1: it trained on none
    of ``s``), matched by timestamp (or integer step) with the checkpoint's ``train_end``."""
    index = run.lookup(s.name)
    ends = run.train_end
    if ends is None:  # a run of an older version: the end of its source's training part
        training = load_source(run.info["source"])[index]
        end = training.time[len(training) - run.info["valid_steps"] - 1]
    else:
        end = ends[index]
    dated = not np.issubdtype(s.time.dtype, np.integer)
    if dated != isinstance(end, str):
        kind = "timestamps" if dated else "integer steps"
        raise ValueError(
            f"series {s.name!r}: the data has {kind} but the model trained up to {end!r}; "
            "read it with the same --time-col as the training data"
        )
    if not dated:
        return int(np.searchsorted(s.time, int(end), side="right")) - 1
    import pandas as pd  # timestamps come from pandas (time zones included)

    return int(pd.DatetimeIndex(s.time).searchsorted(pd.Timestamp(end), side="right")) - 1


def backtest_origins(
    s: Series, config: ForecastConfig, origins: int, stride: int, first: int = 0
) -> list[int]:
    """The last ``origins`` origins of ``s``, ``stride`` apart, the last one a horizon
    before the end, none before position ``first`` (the end of the training data: see the
    module docstring)."""
    for name, value in (("origins", origins), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    c = config
    last = len(s) - 1 - c.horizon
    lowest = max(first, c.context - 1)
    fit = (last - lowest) // stride + 1 if last >= lowest else 0
    if origins > fit:
        raise ValueError(
            f"series {s.name!r}: {origins} origin(s) {stride} apart do not fit, only {fit}: of "
            f"its {len(s)} rows, origins must leave {c.horizon} (the horizon) after them and "
            f"lie at or after row {lowest + 1} ({_make_room(first, c, origins, stride, fit)})"
        )
    return [last - k * stride for k in range(origins)][::-1]


def _make_room(first: int, c: ForecastConfig, origins: int, stride: int, fit: int) -> str:
    """Why origins cannot start earlier, and what would make room for more."""
    fewer = f"ask for at most {fit} --origins or a smaller --stride, " if fit else ""
    if first >= c.context - 1:
        return (
            "the last step the model trained on: earlier origins would score it in sample); "
            f"{fewer}backtest on data that continues past the training data, or train with a "
            "larger --valid-steps"
        )
    need = c.context + c.horizon + (origins - 1) * stride
    return f"the model reads {c.context} steps of context); {fewer}they need at least {need} rows"


def score_forecasts(
    s: Series, points: Sequence[int], point: np.ndarray, quant: np.ndarray, levels
) -> dict[str, float]:
    """Scores of forecasts (N, H) and quantiles (N, H, L) at ``levels`` made from ``points``."""
    horizon = point.shape[1]
    scale = mase_scale(s.values[: points[0] + 1], seasonal_period(s.freq))
    y = np.stack([s.values[t + 1 : t + 1 + horizon] for t in points])
    return point_scores(y, point, scale) | interval_scores(y, quant, levels, scale)


def _summary(per_series: list[dict]) -> dict:
    keys = [k for k in per_series[0] if k not in ("series", "origins")]
    return {
        "mean": {k: float(np.mean([r[k] for r in per_series])) for k in keys},
        "series": per_series,
    }


def backtest(
    run: ForecastRun, series: Sequence[Series], origins: int = 5, stride: int | None = None
) -> dict:
    """Scores of forecasts from the last ``origins`` origins of each series (see the
    module docstring): per series, and their mean over series."""
    c = run.config
    stride = c.horizon if stride is None else stride
    per_series = []
    for s in series:
        points = backtest_origins(s, c, origins, stride, training_end(run, s))
        point, quant = predict(run.model, c, run.prepare(s), points)
        scores = score_forecasts(s, points, point, quant, c.levels)
        per_series.append({"series": s.name, "origins": points} | scores)
    return _summary(per_series)


def baseline_backtest(
    name: str, series: Sequence[Series], rows: list[dict], config: ForecastConfig
) -> dict:
    """Baseline ``name`` refitted at every origin of ``rows`` (a backtest's per-series
    rows), scored exactly as the model is, with an interval as wide as the model's."""
    coverage = config.levels[-1] - config.levels[0]
    levels = ((1 - coverage) / 2, 0.5, (1 + coverage) / 2)
    forecaster = baseline(name)
    per_series = []
    for s, row in zip(series, rows, strict=True):
        m, points, found = seasonal_period(s.freq), row["origins"], []
        for t in points:
            point, bounds = forecaster(s.values[: t + 1], config.horizon, m, coverage)
            found.append((point, np.stack([bounds[:, 0], point, bounds[:, 1]], axis=-1)))
        point, quant = (np.stack(x) for x in zip(*found, strict=True))
        per_series.append({"series": s.name} | score_forecasts(s, points, point, quant, levels))
    return _summary(per_series)["mean"]


__all__ = [
    "backtest",
    "backtest_origins",
    "baseline_backtest",
    "forecast",
    "future_times",
    "load_source",
    "predict",
    "resume",
    "train",
    "training_end",
]
