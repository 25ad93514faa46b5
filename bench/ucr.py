"""UCR/UEA time-series classification: test accuracy over seeds, on each set's own split.

Data: the ``.ts`` files the ``sktime`` package ships (GunPoint, ItalyPowerDemand, ArrowHead,
BasicMotions, JapaneseVowels), read by ``elman.data.ucr``. Model: a bidirectional LSTM beside
an LSTM-FCN style convolutional branch (``ClassifyConfig(conv=True)``), trained for a fixed
number of epochs; the test set is used for nothing but the final score (no early stopping on
it: the checkpoint scored is the last one). Mean and standard deviation over ``--seeds``.

Targets (issue 4): GunPoint 1.00, ItalyPowerDemand 0.96, ArrowHead 0.85, BasicMotions 0.97,
JapaneseVowels 0.96. Published LSTM-FCN / ROCKET figures: 1.00, 0.962-0.970, 0.81-0.90,
~1.00, ~0.96. Baseline in the same run: 1-nearest-neighbour with Euclidean distance (the
classic UCR yardstick; series of unequal length are compared on their common prefix).

    python bench/ucr.py --seeds 5 --epochs 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from harness import markdown_table, metadata, summary, write_results

from elman.data.ucr import read_ts, sktime_path
from elman.tasks.classify import task as classify
from elman.tasks.registry import load_run
from elman.train import TrainConfig, Trainer, seed_everything

TARGETS = {
    "GunPoint": 1.00,
    "ItalyPowerDemand": 0.96,
    "ArrowHead": 0.85,
    "BasicMotions": 0.97,
    "JapaneseVowels": 0.96,
}


def one_nn(train, test) -> float:
    """1-NN Euclidean accuracy (NaN -> 0; unequal lengths: the common prefix)."""
    right = 0
    for x, label in zip(test.series, test.labels, strict=True):
        best, guess = float("inf"), None
        for y, other in zip(train.series, train.labels, strict=True):
            n = min(len(x), len(y))
            d = float(torch.nan_to_num(x[:n] - y[:n]).pow(2).sum())
            if d < best:
                best, guess = d, other
        right += guess == label
    return right / len(test.labels)


def run_set(name: str, args: argparse.Namespace) -> dict:
    train_set = read_ts(sktime_path(name, "train"))
    test_set = read_ts(sktime_path(name, "test"))
    config = classify.ClassifyConfig(
        hidden=args.hidden,
        pooling="last",
        conv=True,
        dropout=args.dropout,
        batch_size=args.batch_size,
    )
    accuracies, start = [], time.perf_counter()
    for seed in range(args.seeds):
        seed_everything(seed)
        train = train_set.examples()
        task = classify.ClassifyTask(
            train,
            train,
            config,
            seed,
            classes=train_set.classes,
            source={"kind": "ucr", "name": name, "valid_fraction": 0},
        )
        per_epoch = len(task.batches(0))
        steps = args.epochs * per_epoch
        tc = TrainConfig(
            steps=steps,
            optimizer="adamw" if args.weight_decay else "adam",
            lr=args.lr,
            weight_decay=args.weight_decay,
            eval_every=max(1, steps // 10),
            warmup=per_epoch,
            progress=False,
            seed=seed,
        )
        out = Path(args.runs) / f"{name}-{seed}"
        Trainer(task, tc, out).fit()
        model = load_run(out, "last")
        accuracies.append(model.scores(test_set.examples())["accuracy"])
        print(f"{name} seed {seed}: {accuracies[-1]:.4f}", flush=True)
    mean = statistics.mean(accuracies)
    target = TARGETS[name]
    return {
        "name": name,
        "metric": "test_accuracy",
        "value": round(mean, 4),
        "std": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else 0.0,
        "seeds": [round(a, 4) for a in accuracies],
        "target": target,
        "better": "higher",
        "met": mean >= target - 1e-9,
        "baseline": {"1-NN Euclidean": round(one_nn(train_set, test_set), 4)},
        "train_cases": len(train_set.series),
        "test_cases": len(test_set.series),
        "epochs": args.epochs,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "seconds": round(time.perf_counter() - start),
        "config": asdict(config),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's (0: Adam)")
    p.add_argument("--dropout", type=float, default=0.3, help="before the classifier")
    p.add_argument("--name", default="ucr")
    p.add_argument("--runs", default="bench/runs/ucr")
    args = p.parse_args()
    meta = metadata(
        "ucr",
        f"{args.epochs} epochs per seed, {args.seeds} seeds",
        "sktime's UCR/UEA .ts files, their own train/test splits",
    )
    rows: list[dict] = []
    for name in args.sets:
        rows.append(run_set(name, args))
        head = ["set", "accuracy (mean)", "std", "target", "met", "1-NN", "seconds"]
        body = [
            [
                r["name"],
                f"{r['value']:.4f}",
                f"{r['std']:.4f}",
                f"{r['target']:.2f}",
                "yes" if r["met"] else "NO",
                f"{r['baseline']['1-NN Euclidean']:.4f}",
                str(r["seconds"]),
            ]
            for r in rows
        ]
        md = (
            "\n".join(
                [
                    f"# UCR/UEA classification: {meta['budget']}",
                    "",
                    f"{meta['machine']}; {meta['date']}; {meta['data']}.",
                    "",
                    *markdown_table(head, body),
                    "",
                    summary(rows, len(args.sets)),
                ]
            )
            + "\n"
        )
        write_results(Path("bench/results"), args.name, meta, rows, len(args.sets), md)
    print(summary(rows, len(args.sets)))


if __name__ == "__main__":
    sys.exit(main())
