"""Pretrain once, fine-tune everywhere: language models pretrained on the offline corpus
(bench/pretrain_corpus.py), then the UCI sentiment classifier initialised from them.

    python bench/transfer.py pretrain --kind word --minutes 60            # forward word LM
    python bench/transfer.py pretrain --kind word --minutes 60 --reverse  # its backward twin
    python bench/transfer.py sentiment --forward runs/pretrain/word-fw --backward ...-bw

pretrain: one LM per call (run two at 1 thread each side by side), a wall-clock budget with
the cosine schedule annealed by time, or a step budget; its time and held-out figure go to
``bench/results/pretrain_NAME.json``. The corpus holds Brown's training files and
Shakespeare's works: no UCI sentence and none of Brown's validation or test files.

sentiment: the same 10 stratified folds as bench/text_tasks.py; in each, a bidirectional
classifier whose embedding and two directions are the pretrained LMs' (concat pooling)
is fine-tuned ULMFiT's way (slanted triangular rates, discriminative rates per layer
group, gradual unfreezing), its best epoch chosen on a held-out 10% of the training folds,
and scored once on the test fold. Beside it, in the same folds: a bag-of-words logistic
regression (re-run) and the from-scratch BiLSTM (bench/results/text_tasks_sentiment.json,
quoted). Target >= 0.86.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from harness import markdown_table, metadata, write_results
from text_tasks import DATA, classify_split

from elman.data.labelled import read_sentiment, stratified_folds
from elman.tasks.classify import task as classify
from elman.tasks.lm import charlm, wordlm
from elman.tasks.registry import load_run
from elman.tasks.transfer import architecture, load_pretrained, tokenizer_of
from elman.train import TrainConfig, Trainer, seed_everything

RESULTS = Path("bench/results")
TARGET = 0.86


def corpus_files(corpus: Path) -> tuple[list[Path], float, float]:
    """The corpus's files (train then valid) and the valid fractions that cut at the first
    valid file for the char and word readers (from its manifest)."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    files = sorted((corpus / "train").glob("*.txt")) + sorted((corpus / "valid").glob("*.txt"))
    fractions = manifest["training"]
    return files, fractions["charlm_valid_fraction"], fractions["wordlm_valid_fraction"]


def pretrain(args: argparse.Namespace) -> None:
    files, char_fraction, word_fraction = corpus_files(Path(args.corpus))
    name = f"{args.kind}-{'bw' if args.reverse else 'fw'}"
    out = Path(args.runs) / name
    common = dict(
        cell="lstm",
        embedding=args.embedding,
        hidden=args.hidden,
        layers=args.layers,
        dropout=args.dropout,
        weight_dropout=args.weight_dropout,
        reverse=args.reverse,
    )
    budget = (
        {"steps": args.steps}  # a step budget: what the model learns does not depend on load
        if args.steps
        else {"steps": 10**7, "time_limit": args.minutes * 60, "anneal_by_time": True}
    )
    train = TrainConfig(
        **budget,
        optimizer="adamw",
        lr=args.lr,
        weight_decay=0.01,
        warmup=200,
        clip_norm=0.5,
        eval_every=args.eval_every,
        progress=False,
    )
    seed_everything(0)
    start = time.perf_counter()
    if args.kind == "word":
        corpus = wordlm.text_corpus(files, valid_fraction=word_fraction)
        config = wordlm.WordLMConfig(
            **common,
            embed_dropout=0.1,
            tie=False,
            cutoffs=(2000, 10000),
            tokenizer="word",
            min_freq=args.min_freq,
            max_vocab=args.max_vocab,
            batch_size=args.batch_size,
            seq_len=args.seq_len,
            valid_fraction=word_fraction,
        )
        task = wordlm.WordLMTask(corpus, config, 0)
    else:
        text, starts, source = charlm.text_source(files)
        config = charlm.CharLMConfig(
            **common, batch_size=args.batch_size, seq_len=args.seq_len, valid_fraction=char_fraction
        )
        task = charlm.CharLMTask(text, config, 0, source=source, doc_starts=starts)
    trainer = Trainer(task, train, out)
    if (out / "last.safetensors").exists():  # a run an earlier session began: go on exactly
        trainer.restore()
    metrics = trainer.fit()
    seconds = trainer.position.seconds  # training time over every session, not this call's
    print(f"{name}: {metrics} in {seconds:.0f} s ({time.perf_counter() - start:.0f} s now)")
    row = {
        "name": name,
        "metric": "val_loss",
        "value": round(metrics["val_loss"], 4),
        "seconds": round(seconds),
        "steps": trainer.position.step,
        "threads": torch.get_num_threads(),
        "config": asdict(config),
        "train": train.to_json(),
        "metrics": metrics,
        "target": None,
        "met": True,
        "better": "lower",
    }
    meta = metadata(
        f"pretrain_{name}",
        (f"{args.steps} steps" if args.steps else f"{args.minutes:g} min wall")
        + f", {torch.get_num_threads()} thread(s)",
        f"offline corpus {args.corpus}",
    )
    md = "\n".join(
        [
            f"# Pretraining {name}: {meta['budget']}",
            "",
            f"{meta['machine']}; {meta['date']}; {meta['data']}.",
            "",
            *markdown_table(
                ["LM", "val nats/token", "val perplexity", "steps", "seconds"],
                [
                    [
                        name,
                        str(row["value"]),
                        f"{math.exp(row['value']):.1f}",
                        str(row["steps"]),
                        str(row["seconds"]),
                    ]
                ],
            ),
            "",
        ]
    )
    write_results(RESULTS, f"pretrain_{name}", meta, [row], 1, md + "\n")


def tune_lms(paths: list[str], texts, args: argparse.Namespace, fold: int) -> list[Path]:
    """Each LM in ``paths`` fine-tuned for ``args.lm_steps`` steps on ``texts`` (one per
    line): the runs' directories."""
    folder = Path(args.runs) / f"lm{fold}"
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "train.txt"
    text.write_text("\n".join(str(t).strip() for t in texts) + "\n")
    tuned = []
    for path in paths:
        run = load_run(path)
        config = replace(run.config, batch_size=16, seq_len=35, valid_fraction=0.05)
        train = TrainConfig(
            steps=args.lm_steps, lr=1e-3, warmup=0, eval_every=args.lm_steps, progress=False
        )
        out = folder / Path(path).name
        wordlm.train(
            wordlm.text_corpus([text], valid_fraction=0.05), config, train, out, init_from=path
        )
        tuned.append(out)
    return tuned


def sentiment(args: argparse.Namespace) -> None:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    pretrained = [p for p in (args.forward, args.backward) if p]
    lms = load_pretrained(pretrained)
    data = read_sentiment(DATA / "sentiment")
    folds = stratified_folds(data.labels, 10, seed=0)
    config = classify.ClassifyConfig(
        **architecture(lms),
        pooling="concat",
        dropout=args.dropout,
        embed_dropout=args.embed_dropout,
        word_dropout=args.word_dropout,
        weight_dropout=args.weight_dropout,
        batch_size=32,
    )
    ours, theirs, seconds = [], [], []
    chosen = range(args.first_fold, min(10, args.first_fold + args.folds))
    for k, held in ((k, folds[k]) for k in chosen):
        test = data.subset(held)
        rest = data.subset([i for i in range(len(data)) if i not in set(held)])
        train_set, valid_set = classify_split(rest)
        seed_everything(k)
        start = time.perf_counter()
        if args.lm_steps:  # ULMFiT's second stage, on this fold's training texts only
            lms = load_pretrained(tune_lms(pretrained, train_set.inputs, args, k))
        tokenizer, source = tokenizer_of(lms[0]), {"kind": "given"}
        task = classify.ClassifyTask(train_set, valid_set, config, k, None, tokenizer, source)
        task.initialise(lms)
        epoch = len(task.batches(0))
        train = TrainConfig(
            steps=args.epochs * epoch,
            optimizer="adamw",
            lr=args.lr,
            weight_decay=0.1,
            schedule="slanted",
            discriminative=args.discriminative,
            unfreeze_every=epoch if args.unfreeze else None,
            eval_every=epoch,
            monitor=args.monitor,
            progress=False,
        )
        out = Path(args.runs) / f"sentiment{k}"
        Trainer(task, train, out).fit()
        ours.append(load_run(out).scores(test)["accuracy"])
        seconds.append(time.perf_counter() - start)
        vec = CountVectorizer(ngram_range=(1, 2), lowercase=True)
        bow = LogisticRegression(max_iter=2000, C=1.0)
        bow.fit(vec.fit_transform(rest.inputs), rest.labels)
        theirs.append(float((bow.predict(vec.transform(test.inputs)) == list(test.labels)).mean()))
        print(f"fold {k}: ours {ours[-1]:.4f}  bag-of-words LR {theirs[-1]:.4f}", flush=True)
    mean = sum(ours) / len(ours)
    scratch = json.loads((RESULTS / "text_tasks_sentiment.json").read_text())["rows"][0]["value"]
    row = {
        "name": "sentiment bilstm-concat from pretrained LMs (UCI, 10-fold)",
        "metric": "cv_accuracy",
        "value": round(mean, 4),
        "folds": [round(a, 4) for a in ours],
        "fold_numbers": list(chosen),
        "target": TARGET,
        "better": "higher",
        "met": mean >= TARGET,
        "baseline": {
            "bag-of-words logistic regression (this run)": round(sum(theirs) / len(theirs), 4),
            "from scratch (text_tasks_sentiment)": scratch,
        },
        "fine_tune_seconds_per_fold": round(sum(seconds) / len(seconds), 1),
        "lms": [lm.source for lm in lms],
        "lm_steps_per_fold": args.lm_steps,
        "config": asdict(config),
        "train": train.to_json(),
    }
    budget = f"{args.epochs} epochs per fold, {torch.get_num_threads()} thread(s)"
    record_sentiment(row, budget, args.name)


def record_sentiment(row: dict, budget: str, name: str) -> None:
    meta = metadata(
        "transfer_sentiment",
        budget,
        "UCI sentiment (10-fold), LMs pretrained on the offline corpus",
    )
    base = "; ".join(f"{k} {v}" for k, v in row["baseline"].items())
    md = "\n".join(
        [
            "# Sentiment from pretrained language models",
            "",
            f"{meta['machine']}; {meta['date']}; {meta['data']}.",
            "",
            *markdown_table(
                ["name", "10-fold accuracy", "target", "met", "baselines", "s/fold"],
                [
                    [
                        row["name"],
                        str(row["value"]),
                        str(TARGET),
                        "yes" if row["met"] else "NO",
                        base,
                        str(row["fine_tune_seconds_per_fold"]),
                    ]
                ],
            ),
            "",
        ]
    )
    write_results(RESULTS, name, meta, [row], 1, md + "\n")


def merge(args: argparse.Namespace) -> None:
    """One 10-fold row from the parts that processes ran side by side (--first-fold):
    every mean weighted by the folds each part holds."""
    docs = [json.loads((RESULTS / f"{part}.json").read_text()) for part in args.parts]
    rows = [d["rows"][0] for d in docs]
    numbers = [k for r in rows for k in r["fold_numbers"]]
    if sorted(numbers) != list(range(10)):
        raise SystemExit(f"merge: the parts hold folds {sorted(numbers)}, not 0-9 once each")

    def weighted(get) -> float:
        return sum(get(r) * len(r["folds"]) for r in rows) / len(numbers)

    folds = dict(zip(numbers, [a for r in rows for a in r["folds"]], strict=True))
    row = rows[0] | {
        "value": round(weighted(lambda r: r["value"]), 4),
        "folds": [folds[k] for k in range(10)],
        "fold_numbers": list(range(10)),
        "fine_tune_seconds_per_fold": round(weighted(lambda r: r["fine_tune_seconds_per_fold"]), 1),
        "parts": list(args.parts),
    }
    bow = "bag-of-words logistic regression (this run)"
    row["baseline"] = rows[0]["baseline"] | {bow: round(weighted(lambda r: r["baseline"][bow]), 4)}
    row["met"] = row["value"] >= TARGET
    record_sentiment(
        row, docs[0]["budget"] + f", folds split over {len(rows)} processes", args.name
    )
    print(json.dumps(row), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    t = sub.add_parser("pretrain", help="one language model on the offline corpus")
    t.add_argument("--kind", choices=["word", "char"], required=True)
    t.add_argument("--reverse", action="store_true", help="the backward model")
    t.add_argument("--corpus", default="/tmp/elman-pretrain-corpus")
    t.add_argument("--minutes", type=float, default=60, help="wall-clock budget")
    t.add_argument("--steps", type=int, default=0, help="a step budget instead (0: minutes)")
    t.add_argument("--embedding", type=int, default=256)
    t.add_argument("--hidden", type=int, default=512)
    t.add_argument("--layers", type=int, default=1)
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--weight-dropout", type=float, default=0.0)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--seq-len", type=int, default=70)
    t.add_argument("--min-freq", type=int, default=3)
    t.add_argument("--max-vocab", type=int, default=30000)
    t.add_argument("--eval-every", type=int, default=1000)
    t.add_argument("--runs", default="runs/pretrain")
    s = sub.add_parser("sentiment", help="10-fold UCI sentiment fine-tuned from the LMs")
    s.add_argument("--forward", required=True)
    s.add_argument("--backward", default=None)
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--folds", type=int, default=10, help="run N folds only (from --first-fold)")
    s.add_argument(
        "--first-fold", type=int, default=0, help="the first fold run (split folds over processes)"
    )
    s.add_argument("--lr", type=float, default=2e-3)
    s.add_argument("--discriminative", type=float, default=2.6)
    s.add_argument("--unfreeze", action=argparse.BooleanOptionalAction, default=True)
    s.add_argument("--dropout", type=float, default=0.5)
    s.add_argument("--embed-dropout", type=float, default=0.3)
    s.add_argument("--word-dropout", type=float, default=0.2)
    s.add_argument("--weight-dropout", type=float, default=0.3)
    s.add_argument(
        "--lm-steps", type=int, default=0, help="fine-tune the LMs on each fold's texts first"
    )
    s.add_argument(
        "--monitor",
        default="val_accuracy",
        help="validation metric that picks each fold's checkpoint (the test fold never does)",
    )
    s.add_argument("--name", default="transfer_sentiment")
    s.add_argument("--runs", default="bench/runs/transfer")
    m = sub.add_parser("merge", help="one 10-fold row from sentiment parts run side by side")
    m.add_argument("parts", nargs="+", help="results names of the parts (bench/results/NAME.json)")
    m.add_argument("--name", default="transfer_sentiment")
    args = p.parse_args()
    {"pretrain": pretrain, "sentiment": sentiment, "merge": merge}[args.step](args)


if __name__ == "__main__":
    sys.exit(main())
