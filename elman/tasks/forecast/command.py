"""``elman`` commands for time series: train forecast, forecast, backtest, detect (and the
refusal of ``elman evaluate``). They parse, check the options, call the run and print."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

from elman.data.series import stamp
from elman.files import atomic_path, output_file
from elman.tasks.forecast import anomaly
from elman.tasks.forecast import trained as forecast_runs
from elman.tasks.forecast.baselines import BASELINES
from elman.tasks.forecast.data import ForecastConfig
from elman.tasks.forecast.detection import detect as detect_anomalies
from elman.tasks.forecast.detection import read_labels
from elman.tasks.forecast.run import SPEC, ForecastRun
from elman.tasks.options import (
    add_task_options,
    config_from,
    integer,
    number,
    refuse_existing,
    train_config,
)
from elman.tasks.spec import Handler


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
    t.add_argument(
        "--valid-steps", type=integer, help="held-out steps per series (default: horizon)"
    )
    t.add_argument(
        "--streamable",
        action="store_true",
        help="a model `elman detect` and server sessions can read one value at a time: "
        "autoregressive, without per-window normalization and calendar features (sets "
        "--no-normalize --no-calendar)",
    )
    add_task_options(t, SPEC)
    t.set_defaults(train=train_forecaster)

    f = sub.add_parser("forecast", help="forecast after the end of each series (CSV out)")
    f.add_argument("dir", help="model directory")
    f.add_argument("data", nargs="?", help="the series (default: the run's training file)")
    f.add_argument("--horizon", type=integer, help="steps to forecast (<= the trained horizon)")
    f.add_argument("--future", help="CSV of the known-future covariates over the horizon")
    f.add_argument(
        "--plot",
        help="image (PNG, SVG, PDF, ...) of the forecasts with their intervals: one panel per "
        "series, in a grid (capped; stderr says how many were left out)",
    )
    f.add_argument(
        "--seed", type=integer, help="autoregressive: seed of the sample paths (default: 0)"
    )
    f.add_argument("--checkpoint", choices=("best", "last"), default="best")
    f.set_defaults(handler=forecast, run_type=ForecastRun)

    b = sub.add_parser("backtest", help="rolling-origin evaluation, beside baselines")
    b.add_argument("dir", help="model directory")
    b.add_argument("data", help="the series to evaluate (read like the training data)")
    b.add_argument("--origins", type=integer, default=5, help="forecast origins per series")
    b.add_argument("--stride", type=integer, help="steps between origins (default: horizon)")
    b.add_argument("--baselines", nargs="*", default=["naive", "seasonal_naive"], choices=BASELINES)
    b.add_argument("--checkpoint", choices=("best", "last"), default="best")
    b.set_defaults(handler=backtest, run_type=ForecastRun)

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
        type=number,
        default=0.99,
        help="quantile: the level; pot: where the tail starts",
    )
    d.add_argument(
        "--risk",
        type=number,
        help=f"pot: the flag rate aimed at, in (0, 1 - quantile) (default: {anomaly.DEFAULT_RISK})",
    )
    d.add_argument(
        "--score",
        choices=("residual", "nll"),
        default="residual",
        help="residual: |z - mean| / sd of the one-step forecast; nll: -log p (gaussian head)",
    )
    d.add_argument(
        "--adapt",
        type=number,
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
        type=integer,
        default=1,
        help="span of a moving average of the scores, for anomalies that last (1: off)",
    )
    d.add_argument("--label-col", help="0/1 labels in DATA: also report precision/recall/F1")
    d.add_argument("--metrics", help="with --label-col: write the metrics as JSON here")
    d.add_argument("--checkpoint", choices=("best", "last"), default="best")
    d.set_defaults(handler=detect, run_type=ForecastRun)


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


def train_forecaster(a: argparse.Namespace) -> dict:
    """`elman train forecast`: the metrics of the run it trains into ``--out``."""
    out = refuse_existing(a.out, a.overwrite)
    config = config_from(a, ForecastConfig)
    if a.streamable:
        config = _streamable(config, a.future_covariates)
    source = _source(a, a.data)
    series = forecast_runs.load_source(source)
    return forecast_runs.train(
        series, config, train_config(a), out, source, a.valid_steps, epochs=a.epochs
    )


def _streamable(config: ForecastConfig, future: list[str]) -> ForecastConfig:
    """``config`` for a model read one value at a time (``--streamable``)."""
    if config.mode != "autoregressive":
        raise ValueError(
            "--streamable: a stream feeds one value at a time to an autoregressive model; "
            f"it cannot go with --mode {config.mode}"
        )
    if future:
        raise ValueError(
            f"--streamable: a stream takes values alone, not --future-covariates {future}"
        )
    return replace(config, normalize=False, calendar=False)


def _at_least_one(value: int | None, option: str) -> None:
    """Refuse an explicit 0 or negative count (None: the option was not given)."""
    if value is not None and value < 1:
        raise ValueError(f"{option} must be >= 1, got {value}")


def _check_forecast_options(a: argparse.Namespace, run: ForecastRun) -> int:
    """The forecast's horizon; refuses options this model would ignore."""
    c = run.config
    _at_least_one(a.horizon, "--horizon")
    horizon = c.horizon if a.horizon is None else a.horizon
    if horizon > c.horizon:
        raise ValueError(
            f"--horizon must be in 1..{c.horizon} (trained for {c.horizon}), got {horizon}"
        )
    if a.future is not None and not run.future_names:
        raise ValueError(
            f"--future {a.future}: this model reads no known-future covariate columns "
            "(calendar features, if any, come from the timestamps); drop --future"
        )
    if a.seed is not None and c.mode == "direct":
        raise ValueError(
            "--seed: a direct-mode model emits its quantiles at once and draws no sample "
            "paths, so a seed changes nothing; drop --seed"
        )
    return horizon


def forecast(a: argparse.Namespace, run: ForecastRun) -> None:
    """CSV on stdout: series, step, time, point and one column per quantile level."""
    if a.plot:
        from elman.viz.forecast import check_plot_path

        check_plot_path(a.plot)
    series = run.series(a.data)
    c = run.config
    horizon = _check_forecast_options(a, run)
    found = []  # every series forecast before anything is written: an error leaves no output
    for s in series:
        future = run.future_rows(a.future, s, c.horizon)
        point, quant = forecast_runs.forecast(run, s, future, a.seed or 0)
        times = forecast_runs.future_times(s, c.horizon)[:horizon]
        found.append((s, times, point[:horizon], quant[:horizon]))
    writer = csv.writer(sys.stdout)
    writer.writerow(["series", "step", "time", "point", *(f"q{q:g}" for q in c.levels)])
    for s, times, point, quant in found:
        for h in range(horizon):
            row = [f"{point[h]:.6g}", *(f"{v:.6g}" for v in quant[h])]
            writer.writerow([s.name, h + 1, _stamp(times[h]), *row])
    if a.plot:
        _plot(
            [_panel(s, c.context, *rest) for s, *rest in found], a.plot, c.levels[-1] - c.levels[0]
        )


def _panel(s, context: int, times, point, quant):
    from elman.viz.forecast import Panel

    keep = min(len(s), 4 * context)
    tail = slice(len(s) - keep, None)
    return Panel(
        s.time[tail], s.values[tail], times, point, quant[:, 0], quant[:, -1], None, s.name
    )


def _plot(panels: list, path: str, coverage: float) -> None:
    from elman.viz.forecast import MAX_PANELS, plot_forecasts

    plot_forecasts(panels, path, coverage)
    if len(panels) > MAX_PANELS:
        print(
            f"elman: --plot {path}: drew the first {MAX_PANELS} of {len(panels)} series "
            "(the CSV holds them all)",
            file=sys.stderr,
        )


def _stamp(t) -> str:
    """A timestamp as ISO text (the date alone at midnight), or an integer step."""
    return str(stamp(t))


def backtest(a: argparse.Namespace, run: ForecastRun) -> None:
    """JSON on stdout: ours and the baselines at the same origins, mean scores over series,
    and ours per series."""
    _at_least_one(a.origins, "--origins")
    _at_least_one(a.stride, "--stride")
    if a.stride is not None and a.origins == 1:
        raise ValueError(f"--stride {a.stride}: it spaces origins, and --origins 1 has one")
    series = run.series(a.data)
    ours = forecast_runs.backtest(run, series, a.origins, a.stride)
    result = {"model": ours["mean"], "series": ours["series"]}
    for name in a.baselines:
        result[name] = forecast_runs.baseline_backtest(name, series, ours["series"], run.config)
    print(json.dumps(result))


def _check_detect_options(a: argparse.Namespace) -> anomaly.Detector:
    """The detector of ``a``; refuses options its rule ignores, before any scoring."""
    if a.risk is not None and a.rule != "pot":
        raise ValueError(
            f"--risk {a.risk:g}: only --rule pot reads it (the {a.rule} rule flags scores above "
            "the --quantile of the training scores); drop --risk or pass --rule pot"
        )
    anomaly.check_rule(a.rule, a.quantile, a.risk)
    if a.metrics and not a.label_col:
        raise ValueError(f"--metrics {a.metrics}: metrics need labels; give --label-col too")
    if a.metrics:
        output_file(a.metrics, "--metrics")
    return anomaly.Detector(a.score, adapt=a.adapt, replace=a.replace, smooth=a.smooth)


def detect(a: argparse.Namespace, run: ForecastRun) -> None:
    """CSV on stdout: series, time, value, score, flag; metrics JSON with --label-col."""
    detector = _check_detect_options(a)
    labels = read_labels(a.data, a.label_col) if a.label_col else None
    series = run.series(a.data)
    found = detect_anomalies(run, series, detector, a.rule, a.quantile, a.risk, labels)
    writer = csv.writer(sys.stdout)
    writer.writerow(["series", "time", "value", "score", "flag"])
    for s, scores in zip(series, found.scores, strict=True):
        for t, v, sc in zip(s.time, s.values, scores, strict=True):
            flag = int(sc > found.threshold)
            writer.writerow([s.name, _stamp(t), f"{v:.6g}", f"{sc:.6g}", flag])
    if found.metrics is not None:
        text = json.dumps(found.metrics)
        if a.metrics:
            with atomic_path(a.metrics) as tmp:
                tmp.write_text(text + "\n")
        print(text, file=sys.stderr)


def evaluate(a: argparse.Namespace, run: ForecastRun) -> None:
    """`elman evaluate` on a forecaster: refused by the run, which says to backtest instead."""
    print(json.dumps(run.evaluate()))


HANDLERS = {"evaluate": Handler(evaluate)}

__all__ = [
    "HANDLERS",
    "add_parsers",
    "backtest",
    "detect",
    "evaluate",
    "forecast",
    "train_forecaster",
]
