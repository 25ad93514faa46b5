"""Anomaly detection on labelled series: ours (surprise under a one-step autoregressive
forecaster) beside a rolling z-score, in the same run.

Data: sktime's bundled ``yahoo/yahoo.csv`` (1,000 points, 7 labelled point anomalies, the
first at step 431) and ``mitdb/mitdb.csv`` (7,500 ECG samples, one labelled segment of 352
points from step 6,936). Each is split in time: the model trains on the first ``--train``
share (anomaly-free in both sets), thresholds are the ``--quantile`` of each method's
scores on that part, and everything after it is the test part scored here.

Rolling z-score baseline: s_t = |y_t - mean(y_{t-w..t-1})| / std(y_{t-w..t-1}), w = 50.
Metrics on the test part: point-wise and point-adjusted F1 (see ``elman.tasks.anomaly``) and
PR-AUC of the raw scores. Target (issue 6): ours beats the baseline on both sets.

    python bench/anomaly.py [--steps 1500]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from harness import markdown_table, metadata, summary, write_results

from elman.data.series import load_series
from elman.tasks import anomaly
from elman.tasks import forecast_runs as fr
from elman.tasks.forecast import ForecastConfig
from elman.train import TrainConfig

SETS = {"yahoo": 0.4, "mitdb": 0.6}  # share of the series used for training


def read(name: str) -> pd.DataFrame:
    import sktime

    path = Path(sktime.__file__).parent / "datasets" / "data" / name / f"{name}.csv"
    if not path.exists():
        raise SystemExit(f"{path} is missing: `pip install sktime` ships it")
    return pd.read_csv(path)


def rolling_z(y: np.ndarray, window: int = 50) -> np.ndarray:
    s = pd.Series(y)
    mean = s.shift(1).rolling(window, min_periods=5).mean()
    std = s.shift(1).rolling(window, min_periods=5).std()
    return ((s - mean).abs() / std.clip(lower=1e-9)).fillna(0.0).to_numpy()


def run_set(name: str, args: argparse.Namespace) -> dict:
    frame = read(name)
    y, labels = frame["data"].to_numpy(float), frame["label"].to_numpy(int)
    cut = int(len(y) * (args.train_share or SETS[name]))
    if labels[:cut].any():
        raise SystemExit(f"{name}: the training part holds labelled anomalies; lower --train-share")
    (train,) = load_series(pd.DataFrame({"y": y[:cut]}), "y")
    (whole,) = load_series(pd.DataFrame({"y": y}), "y")
    config = ForecastConfig(
        context=args.context,
        horizon=1,
        hidden=args.hidden,
        layers=args.layers,
        calendar=False,
        normalize=False,
        difference=args.difference,
        head=args.head,
    )
    out = Path(args.runs) / name
    start = time.perf_counter()
    tc = TrainConfig(
        steps=args.steps, lr=args.lr, eval_every=max(1, args.steps // 5), progress=False
    )
    fr.train([train], config, tc, out)
    trained = fr.load(out)
    ours = anomaly.scores(trained, whole, args.score)
    base = rolling_z(y)
    row = {
        "name": name,
        "points": len(y),
        "train_points": cut,
        "anomalies_in_test": int(labels[cut:].sum()),
    }
    for method, raw in (("ours", ours), ("rolling z-score", base)):
        threshold = float(np.quantile(raw[1:cut], args.quantile))
        test = raw[cut:]
        row[method] = anomaly.detection_scores(labels[cut:], test > threshold, test) | {
            "threshold": threshold
        }
    row["seconds"] = round(time.perf_counter() - start)
    row["config"] = asdict(config)
    print(
        name,
        {m: {k: round(v, 3) for k, v in row[m].items()} for m in ("ours", "rolling z-score")},
        flush=True,
    )
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--train-share", type=float, default=None)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--head", default="gaussian", choices=("gaussian", "quantile"))
    p.add_argument("--score", default="residual", choices=("residual", "nll"))
    p.add_argument("--quantile", type=float, default=0.99)
    p.add_argument(
        "--difference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="model first differences (the yahoo series drifts far past its training range)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default="bench/runs/anomaly")
    p.add_argument("--name", default="anomaly")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    meta = metadata(
        "anomaly",
        f"{args.steps} optimizer steps per set (1 thread); threshold: the {args.quantile} quantile "
        "of training-part scores",
        "sktime's yahoo.csv and mitdb.csv, split in time (train share: yahoo 0.4, mitdb 0.6)",
    )
    rows: list[dict] = []
    for name in args.sets:
        rows.append(run_set(name, args))
    targets = []
    for r in rows:
        for metric in ("point_f1", "adjusted_f1", "pr_auc"):
            ours, base = r["ours"][metric], r["rolling z-score"][metric]
            targets.append(
                {
                    "name": f"{r['name']} {metric}: ours vs rolling z-score",
                    "metric": metric,
                    "value": round(ours, 4),
                    "target": round(base, 4),
                    "better": "higher",
                    "met": ours > base,
                    "baseline": {"rolling z-score": round(base, 4)},
                }
            )
    head = ["set", "metric", "ours", "rolling z-score"]
    body = [
        [t["name"].split()[0], t["metric"], f"{t['value']:.3f}", f"{t['target']:.3f}"]
        for t in targets
    ]
    md = (
        "\n".join(
            [
                f"# Anomaly detection: {meta['budget']}",
                "",
                f"{meta['machine']}; {meta['date']}; {meta['data']}.",
                "",
                *markdown_table(head, body, 2),
                "",
                summary(targets, len(targets)),
            ]
        )
        + "\n"
    )
    write_results(
        Path("bench/results"), args.name, meta, rows + targets, len(rows) + len(targets), md
    )
    print(md)


if __name__ == "__main__":
    sys.exit(main())
