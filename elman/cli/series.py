"""``elman`` commands for time series: train forecast, forecast, backtest, detect."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from elman.cli.options import (
    add_dataclass_options,
    add_run_options,
    config_from,
    refuse_existing,
    train_config,
)
from elman.data.series import read_table
from elman.nn import CELLS
from elman.tasks import anomaly, forecast_runs
from elman.tasks.baselines import BASELINES
from elman.tasks.forecast import ForecastConfig

HELP = {
    "mode": "autoregressive (feed predictions back) or direct (the whole horizon at once)",
    "context": "steps the model reads before each forecast",
    "horizon": "steps forecast at once (the longest horizon the model can give)",
    "cell": f"recurrent cell: {', '.join(CELLS)}",
    "hidden": "hidden units per layer",
    "layers": "stacked recurrent layers",
    "dropout": "dropout between layers and before the head, in [0, 1)",
    "head": "gaussian (mean, sd) or quantile (pinball loss)",
    "levels": "quantile levels reported (and learned by a quantile head); must include 0.5",
    "scaling": "per-series scaling: standard, minmax, robust or none",
    "normalize": "shift and scale each window by its context's mean and sd (RevIN); "
    "turn off for anomaly detection",
    "difference": "autoregressive: model first differences (trends, level shifts)",
    "calendar": "add calendar features as known-future covariates",
    "id_embedding": "size of a learned series-id embedding (0: none)",
    "samples": "sample paths of an autoregressive forecast",
    "stride": "steps between training windows",
    "batch_size": "windows per batch",
}
TRAIN = {"steps": 2000, "lr": 1e-3, "eval_every": 200, "clip_norm": 5.0}


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-col", help="the timestamp column (default: integer steps)")
    p.add_argument("--target", nargs="+", help="target column(s) (default: every numeric one)")
    p.add_argument("--id-col", help="one series per value of this column (a global model)")
    p.add_argument("--past-covariates", nargs="*", default=[], help="known up to the origin")
    p.add_argument("--future-covariates", nargs="*", default=[], help="known over the horizon")
    p.add_argument("--freq", help="pandas frequency, e.g. D, h, MS (default: inferred)")
    p.add_argument(
        "--missing",
        default="interpolate",
        choices=("interpolate", "ffill", "zero", "error"),
        help="how missing values (and gap steps) are filled",
    )


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    t = train.add_parser("forecast", help="probabilistic forecaster (one or many series)")
    t.add_argument("data", help="CSV/TSV/Parquet file of the series")
    add_data_options(t)
    t.add_argument("--valid-steps", type=int, help="held-out steps per series (default: horizon)")
    add_dataclass_options(t, ForecastConfig, HELP)
    add_run_options(t, TRAIN)

    f = sub.add_parser("forecast", help="forecast after the end of each series (CSV out)")
    f.add_argument("dir", help="model directory")
    f.add_argument("data", nargs="?", help="the series (default: the run's training file)")
    f.add_argument("--horizon", type=int, help="steps to forecast (<= the trained horizon)")
    f.add_argument("--future", help="CSV of the known-future covariates over the horizon")
    f.add_argument("--plot", help="PNG of the first series' forecast with its interval")
    f.add_argument("--seed", type=int, default=0, help="seed of the sample paths")
    f.add_argument("--checkpoint", choices=("best", "last"), default="best")

    b = sub.add_parser("backtest", help="rolling-origin evaluation, beside baselines")
    b.add_argument("dir", help="model directory")
    b.add_argument("data", help="the series to evaluate (read like the training data)")
    b.add_argument("--origins", type=int, default=5, help="forecast origins per series")
    b.add_argument("--stride", type=int, help="steps between origins (default: horizon)")
    b.add_argument("--baselines", nargs="*", default=["naive", "seasonal_naive"], choices=BASELINES)
    b.add_argument("--checkpoint", choices=("best", "last"), default="best")

    d = sub.add_parser("detect", help="anomaly scores and flags per value (CSV out)")
    d.add_argument("dir", help="model directory (an autoregressive forecaster)")
    d.add_argument("data", help="the series to score (read like the training data)")
    d.add_argument(
        "--rule",
        choices=anomaly.THRESHOLDS,
        default="quantile",
        help="threshold from the scores on the run's training data: their --quantile, or pot: "
        "a generalized Pareto tail fitted above it, at --risk",
    )
    d.add_argument(
        "--quantile",
        type=float,
        default=0.99,
        help="quantile: the level; pot: where the tail starts",
    )
    d.add_argument("--risk", type=float, default=1e-3, help="pot: the flag rate aimed at")
    d.add_argument(
        "--score",
        choices=("residual", "nll"),
        default="residual",
        help="residual: |z - mean| / sd of the one-step forecast; nll: -log p (gaussian head)",
    )
    d.add_argument(
        "--adapt",
        type=float,
        default=0.0,
        help="rate of a running residual scale that rescales residual scores, so noise that "
        "grows after training is not flagged throughout (0: off; e.g. 0.05)",
    )
    d.add_argument(
        "--replace",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a flagged value enters the model as its forecast, so it does not disturb the "
        "next scores (the first of a run of flags only)",
    )
    d.add_argument(
        "--smooth",
        type=int,
        default=1,
        help="span of a moving average of the scores, for anomalies that last (1: off)",
    )
    d.add_argument("--label-col", help="0/1 labels in DATA: also report precision/recall/F1")
    d.add_argument("--metrics", help="with --label-col: write the metrics as JSON here")
    d.add_argument("--checkpoint", choices=("best", "last"), default="best")


def _source(a: argparse.Namespace, path: str) -> dict:
    return {
        "kind": "file",
        "path": str(Path(path).resolve()),
        "targets": a.target,
        "time_col": a.time_col,
        "id_col": a.id_col,
        "past": a.past_covariates,
        "future": a.future_covariates,
        "freq": a.freq,
        "missing": a.missing,
    }


def train(a: argparse.Namespace) -> dict:
    out = refuse_existing(a.out, a.overwrite)
    source = _source(a, a.data)
    series = forecast_runs.load_source(source)
    config = config_from(a, ForecastConfig)
    return forecast_runs.train(
        series, config, train_config(a), out, source, a.valid_steps, epochs=a.epochs
    )


def _series_like_training(out: str, path: str | None, which: str):
    """The trained model and the series of ``path`` read with the run's own column options."""
    trained = forecast_runs.load(out, which)
    source = trained.info["source"]
    if path is not None:
        source = source | {"kind": "file", "path": str(Path(path).resolve())}
    return trained, forecast_runs.load_source(source)


def _future_rows(path: str | None, trained, s, horizon: int) -> np.ndarray | None:
    """The known-future covariates over the horizon from a CSV (columns as in training)."""
    if s.future.shape[1] == 0:
        return None
    if path is None:
        raise ValueError(
            f"the model reads {s.future.shape[1]} known-future covariate(s): give their values "
            f"over the next {horizon} steps with --future FILE"
        )
    frame = read_table(path)
    names = trained.future_names
    missing = [c for c in names if c not in frame.columns]
    if missing or len(frame) < horizon:
        raise ValueError(
            f"--future {path}: needs columns {names} with {horizon} rows; "
            f"missing {missing}, {len(frame)} row(s)"
        )
    return frame[names].to_numpy(dtype=float)[:horizon]


def forecast(a: argparse.Namespace) -> None:
    """CSV on stdout: series, step, time, point and one column per quantile level."""
    trained, series = _series_like_training(a.dir, a.data, a.checkpoint)
    c = trained.config
    horizon = a.horizon or c.horizon
    if not 1 <= horizon <= c.horizon:
        raise ValueError(
            f"--horizon must be in 1..{c.horizon} (trained for {c.horizon}), got {horizon}"
        )
    writer = csv.writer(sys.stdout)
    writer.writerow(["series", "step", "time", "point", *(f"q{q:g}" for q in c.levels)])
    for k, s in enumerate(series):
        future = _future_rows(a.future, trained, s, c.horizon)
        point, quant = forecast_runs.forecast(trained, s, future, a.seed)
        times = forecast_runs.future_times(s, c.horizon)
        for h in range(horizon):
            writer.writerow(
                [
                    s.name,
                    h + 1,
                    _stamp(times[h]),
                    f"{point[h]:.6g}",
                    *(f"{v:.6g}" for v in quant[h]),
                ]
            )
        if a.plot and k == 0:
            from elman.viz.forecast import plot_forecast

            keep = min(len(s), 4 * c.context)
            plot_forecast(
                s.time[-keep:],
                s.values[-keep:],
                times[:horizon],
                point[:horizon],
                quant[:horizon, 0],
                quant[:horizon, -1],
                a.plot,
                title=s.name,
                coverage=c.levels[-1] - c.levels[0],
            )


def _stamp(t) -> str:
    """A timestamp as ISO text (the date alone at midnight), or an integer step."""
    if not isinstance(t, np.datetime64):
        return str(t)
    text = np.datetime_as_string(t, unit="s")
    return text[:10] if text.endswith("T00:00:00") else text


def backtest(a: argparse.Namespace) -> dict:
    """Ours and the baselines at the same origins: mean scores over series, and per series."""
    trained, series = _series_like_training(a.dir, a.data, a.checkpoint)
    ours = forecast_runs.backtest(trained, series, a.origins, a.stride)
    result = {"model": ours["mean"], "series": ours["series"]}
    for name in a.baselines:
        result[name] = forecast_runs.baseline_backtest(name, series, ours["series"], trained.config)
    return result


def detect(a: argparse.Namespace) -> None:
    """CSV on stdout: series, time, value, score, flag; metrics JSON with --label-col."""
    trained, series = _series_like_training(a.dir, a.data, a.checkpoint)
    cut = trained.info["valid_steps"]
    training = [s.head(len(s) - cut) for s in forecast_runs.load_source(trained.info["source"])]
    detector = anomaly.Detector(a.score, adapt=a.adapt, replace=a.replace, smooth=a.smooth)
    threshold = anomaly.fit_threshold(trained, training, a.quantile, detector, a.rule, a.risk)
    detector = replace(detector, threshold=threshold)
    writer = csv.writer(sys.stdout)
    writer.writerow(["series", "time", "value", "score", "flag"])
    raw = []
    for s in series:
        scores = anomaly.scores(trained, s, detector)
        raw.append(scores)
        for t, v, sc in zip(s.time, s.values, scores, strict=True):
            writer.writerow([s.name, _stamp(t), f"{v:.6g}", f"{sc:.6g}", int(sc > threshold)])
    if a.label_col:
        if len(series) != 1:
            raise ValueError("--label-col scores one series; this file holds several")
        labels = read_table(a.data)[a.label_col].to_numpy()
        if len(labels) != len(raw[0]):
            raise ValueError(f"--label-col: {len(labels)} labels for {len(raw[0])} values (gaps?)")
        result = anomaly.detection_scores(labels, raw[0] > threshold, raw[0])
        result |= {"threshold": threshold, "rule": a.rule, "quantile": a.quantile}
        text = json.dumps(result)
        if a.metrics:
            Path(a.metrics).write_text(text + "\n")
        print(text, file=sys.stderr)
