"""Rolling-origin forecasting on eight classic series, ours beside naive, seasonal naive, ETS
and ARIMA in the same run.

Data (shipped inside statsmodels and pmdarima; no download): airpassengers, wineind,
elec_equip (monthly, m = 12, H = 12), ausbeer (quarterly, m = 4, H = 8), co2 (weekly, 59
missing weeks interpolated, m = 52, H = 26), taylor (half-hourly electricity demand, m = 48,
one day, H = 48; the model reads a week), sunspots and nile (yearly, m = 1, H = 10).

Origins: ``--origins`` per series, ``H // 2`` apart, the last one ``H`` steps before the
end. Ours is trained once per series on the values up to the first origin (its last ``H``
held out for validation); the baselines refit at every origin. Scores: MASE with the
series' m (scale: seasonal naive errors up to the first origin), sMAPE, 80% interval
coverage.

Targets (issue 6): MASE better than seasonal naive on at least 7 of the 8 series, and mean
MASE over the suite below ETS's (the ratio is reported).

    python bench/forecast.py [--series airpassengers nile] [--steps 1500] [--baselines naive ets]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from harness import markdown_table, metadata, summary, write_results

from elman.data.series import load_series
from elman.tasks.forecast import trained as fr
from elman.tasks.forecast.data import ForecastConfig
from elman.tasks.forecast.run import SPEC
from elman.train import TrainConfig

# name: (horizon, seasonal period, context)
SUITE = {
    "airpassengers": (12, 12, 36),
    "wineind": (12, 12, 36),
    "elec_equip": (12, 12, 36),
    "ausbeer": (8, 4, 24),
    "co2": (26, 52, 104),
    "taylor": (48, 48, 336),
    "sunspots": (10, 1, 30),
    "nile": (10, 1, 20),
}


def load(name: str) -> pd.DataFrame:
    """(time, value) of a suite series, from the package that ships it."""
    import pmdarima.datasets as pmd
    import statsmodels.api as sm

    def monthly(values, start):
        return pd.DataFrame(
            {"time": pd.date_range(start, periods=len(values), freq="MS"), "value": values}
        )

    if name == "airpassengers":
        return monthly(pmd.load_airpassengers(as_series=True).to_numpy(), "1949-01-01")
    if name == "wineind":
        return monthly(pmd.load_wineind(as_series=True).to_numpy(), "1980-01-01")
    if name == "elec_equip":
        import statsmodels.datasets.elec_equip as ee

        return monthly(ee.load_pandas().data.iloc[:, 0].to_numpy(), "1995-01-01")
    if name == "ausbeer":
        y = pmd.load_ausbeer(as_series=True).to_numpy()
        return pd.DataFrame(
            {"time": pd.date_range("1956-01-01", periods=len(y), freq="QS"), "value": y}
        )
    if name == "co2":
        d = sm.datasets.co2.load_pandas().data
        return pd.DataFrame({"time": d.index, "value": d["co2"].to_numpy()})
    if name == "taylor":
        y = pmd.load_taylor(as_series=True).to_numpy()
        return pd.DataFrame(
            {"time": pd.date_range("2000-06-05", periods=len(y), freq="30min"), "value": y}
        )
    if name == "sunspots":
        d = sm.datasets.sunspots.load_pandas().data
        return pd.DataFrame({"time": d["YEAR"].astype(int), "value": d["SUNACTIVITY"]})
    if name == "nile":
        d = sm.datasets.nile.load_pandas().data
        return pd.DataFrame({"time": d["year"].astype(int), "value": d["volume"]})
    raise ValueError(f"unknown series {name!r}")


def run_series(name: str, args: argparse.Namespace) -> dict:
    horizon, m, context = SUITE[name]
    frame = load(name)
    integer = frame["time"].dtype.kind == "i"
    frame = frame.set_index("time") if integer else frame
    (s,) = load_series(frame, "value", None if integer else "time", freq=None)
    s.name = name
    stride = max(1, horizon // 2)
    first = len(s) - 1 - horizon - (args.origins - 1) * stride
    head = s.head(first + 1)
    config = ForecastConfig(
        mode=args.mode,
        context=context,
        horizon=horizon,
        hidden=args.hidden,
        layers=args.layers,
        head=args.head,
        calendar=not integer and m > 1,
        samples=args.samples,
    )
    out = Path(args.runs) / name
    start = time.perf_counter()
    tc = TrainConfig(
        steps=args.steps,
        lr=args.lr,
        eval_every=max(1, args.steps // 10),
        progress=False,
        seed=0,
        clip_norm=5.0,
    )
    fr.train([head], config, tc, out)
    trained = SPEC.load(out)
    ours = fr.backtest(trained, [s], args.origins, stride)
    row = {
        "name": name,
        "length": len(s),
        "horizon": horizon,
        "m": m,
        "origins": ours["series"][0]["origins"],
    }
    row["ours"] = ours["mean"]
    row["train_seconds"] = round(time.perf_counter() - start)
    for b in args.baselines:
        t0 = time.perf_counter()
        row[b] = fr.baseline_backtest(b, [s], ours["series"], config) | {
            "seconds": round(time.perf_counter() - t0)
        }
    row["config"] = asdict(config)
    print(
        name,
        {k: round(v["mase"], 3) for k, v in row.items() if isinstance(v, dict) and "mase" in v},
        flush=True,
    )
    return row


def report(rows: list[dict], args: argparse.Namespace, planned: int) -> None:
    meta = metadata(
        "forecast",
        f"{args.steps} optimizer steps per series (1 thread), {args.origins} origins per series",
        "statsmodels / pmdarima bundled series; rolling origins H//2 apart, "
        "the last one H before the end",
    )
    cols = ["ours", *args.baselines]
    body = [
        [
            r["name"],
            *(f"{r[c]['mase']:.3f}" for c in cols),
            f"{r['ours']['smape']:.2f}",
            f"{r['ours']['coverage']:.2f}",
        ]
        for r in rows
    ]
    head = ["series", *(f"MASE {c}" for c in cols), "sMAPE ours", "80% coverage ours"]
    targets = []
    if "seasonal_naive" in args.baselines:
        wins = sum(r["ours"]["mase"] < r["seasonal_naive"]["mase"] for r in rows)
        need = 7 if len(rows) == 8 else len(rows) - 1
        targets.append(
            {
                "name": "series where ours beats seasonal naive (MASE)",
                "metric": "count",
                "value": wins,
                "target": need,
                "better": "higher",
                "met": wins >= need,
            }
        )
    if "ets" in args.baselines:
        ratio = float(
            np.mean([r["ours"]["mase"] for r in rows]) / np.mean([r["ets"]["mase"] for r in rows])
        )
        targets.append(
            {
                "name": "mean MASE, ours / ETS",
                "metric": "ratio",
                "value": round(ratio, 4),
                "target": 1.0,
                "better": "lower",
                "met": ratio < 1.0,
            }
        )
    all_rows = rows + targets
    md = (
        "\n".join(
            [
                f"# Forecasting: {meta['budget']}",
                "",
                f"{meta['machine']}; {meta['date']}; {meta['data']}.",
                "",
                *markdown_table(head, body),
                "",
                summary(all_rows, planned + len(targets)),
            ]
        )
        + "\n"
    )
    write_results(Path("bench/results"), args.name, meta, all_rows, planned + len(targets), md)
    print(md)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--series", nargs="+", default=list(SUITE), choices=list(SUITE))
    p.add_argument("--origins", type=int, default=5)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--hidden", type=int, default=40)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--mode", default="autoregressive", choices=("autoregressive", "direct"))
    p.add_argument("--head", default="gaussian", choices=("gaussian", "quantile"))
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--baselines", nargs="*", default=["naive", "seasonal_naive", "ets", "arima"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default="bench/runs/forecast")
    p.add_argument("--name", default="forecast")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.series:
        rows.append(run_series(name, args))
        report(rows, args, len(args.series))
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    (Path(args.runs) / "rows.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
