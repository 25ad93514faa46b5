"""``elman`` commands for classification: `elman train classify`, and `elman predict` and
`elman evaluate` on a classifier's run directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from elman.tasks import textio
from elman.tasks.classify import task as classify
from elman.tasks.classify.run import SPEC, ClassifyRun
from elman.tasks.options import (
    add_init_option,
    add_task_options,
    config_from,
    integer,
    number,
    refuse_existing,
    train_config,
)
from elman.tasks.scores import format_confusion
from elman.tasks.spec import Handler
from elman.train.distributed import is_main


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    """`elman train classify` (classification answers no command of its own beyond it)."""
    c = train.add_parser(
        "classify",
        help="sequence classifier (text or numeric series)",
        description="Train a classifier: give exactly one data source.",
    )
    src = c.add_argument_group("data (one source)")
    src.add_argument("--sentiment", help="folder of the UCI sentiment sentences (*.json)")
    src.add_argument(
        "--folds", type=integer, default=10, help="--sentiment: folds (one is the test)"
    )
    src.add_argument(
        "--fold", type=integer, default=0, help="--sentiment: the fold held out as test"
    )
    src.add_argument("--train", dest="train_file", help="CSV/TSV of labelled texts")
    src.add_argument("--valid", help="CSV/TSV for validation (default: held out from --train)")
    src.add_argument("--test", help="CSV/TSV scored by `elman evaluate`")
    src.add_argument("--text-column", default="text", help="the CSV's text column")
    src.add_argument("--label-column", default="label", help="the CSV's label column")
    textio.add_max_chars(src, "a CSV/TSV field")
    src.add_argument("--ts", help="a UCR/UEA .ts training file (numeric series)")
    src.add_argument("--ts-test", help="the matching .ts test file")
    src.add_argument("--ucr", help="a UCR/UEA set sktime ships, e.g. GunPoint, JapaneseVowels")
    src.add_argument(
        "--valid-fraction",
        type=number,
        default=0.1,
        help="share of the training examples held out for validation, stratified "
        "(0: validate on the training data)",
    )
    src.add_argument(
        "--valid-fold",
        type=integer,
        default=0,
        help="which of the 1/valid-fraction stratified folds is held out (cross-validation, "
        "e.g. `elman tune --cv`)",
    )
    add_task_options(c, SPEC)
    add_init_option(c)
    c.set_defaults(train=train_classify)


def _source(a: argparse.Namespace) -> dict:
    given = [n for n in ("sentiment", "train_file", "ts", "ucr") if getattr(a, n)]
    if len(given) != 1:
        raise ValueError(
            "give exactly one data source: --sentiment DIR, --train CSV, --ts FILE or --ucr NAME"
            + (f" (got {', '.join('--' + g.replace('_file', '') for g in given)})" if given else "")
        )
    common = {"valid_fraction": a.valid_fraction, "valid_fold": a.valid_fold, "seed": a.seed}
    if a.sentiment:
        return {
            "kind": "sentiment",
            "path": str(Path(a.sentiment).resolve()),
            "folds": a.folds,
            "fold": a.fold,
        } | common
    if a.train_file:
        paths = {
            k: str(Path(v).resolve()) if v else None
            for k, v in (("train", a.train_file), ("valid", a.valid), ("test", a.test))
        }
        return {
            "kind": "table",
            **paths,
            "text_column": a.text_column,
            "label_column": a.label_column,
            "max_chars": a.max_chars,
        } | common
    if a.ts:
        test = str(Path(a.ts_test).resolve()) if a.ts_test else None
        return {"kind": "ts", "train": str(Path(a.ts).resolve()), "test": test} | common
    return {"kind": "ucr", "name": a.ucr} | common


def train_classify(a: argparse.Namespace) -> dict:
    """Train a classifier into ``--out``; a series model's accuracy is printed beside the
    baselines that need no model. Returns the last metrics."""
    out = refuse_existing(a.out, a.overwrite)
    config = config_from(a, classify.ClassifyConfig)
    source = _source(a)
    metrics = classify.train(
        source, config, train_config(a), out, epochs=a.epochs, init_from=a.init_from or ()
    )
    if source["kind"] in ("ts", "ucr") and is_main():
        print(baseline_line(SPEC.load(out).against_baselines()), flush=True)
    return metrics


def baseline_line(r: dict) -> str:
    """A series model's accuracy beside what needs no model, flagged when it is not better."""
    best = max(r["nn1_euclidean"], r["majority_class"])
    verdict = "" if r["accuracy"] > best else "; the model is no better than a baseline"
    if verdict and not r["conv"]:  # measured: the conv branch beat 1-NN where the LSTM lost
        verdict += " (try --conv)"
    return (
        f"{r['data']}: accuracy {r['accuracy']:.4f}, baselines: 1-NN Euclidean "
        f"{r['nn1_euclidean']:.4f}, majority class {r['majority_class']:.4f}{verdict}"
    )


def predict(a: argparse.Namespace, run: ClassifyRun) -> None:
    """Each input's label and class probabilities, after the input: its text, or for series
    its position ``id`` in the file (from 0)."""
    inputs = textio.read_inputs(a.input, run.encoder.kind, a.text_column, sys.stdin, a.max_chars)
    rows = run.predict(inputs.inputs)
    if inputs.kind == "text":
        rows = [{"text": t} | r for t, r in zip(inputs.inputs, rows, strict=True)]
    else:
        rows = [{"id": i} | r for i, r in enumerate(rows)]
    textio.write_rows(rows, a.format, textio.csv_row)


def evaluate(a: argparse.Namespace, run: ClassifyRun) -> None:
    """Accuracy, macro-F1 and the confusion matrix (printed as a table, then all as JSON; a
    PNG of it beside the run) on DATA or the run's test split."""
    result = run.evaluate(a.data, a.text_column, a.label_column, a.max_chars)
    if is_main():
        print(format_confusion(result["confusion"], run.classes), flush=True)
        result["confusion_png"] = _plot_confusion(result, run.classes, run.path)
    print(json.dumps(result))


def _plot_confusion(result: dict, classes, out: Path) -> str | None:
    try:
        from elman.viz.confusion import plot_confusion
    except ImportError:
        return None
    return str(plot_confusion(result["confusion"], classes, out / "confusion.png"))


HANDLERS = {"predict": Handler(predict), "evaluate": Handler(evaluate)}

__all__ = [
    "HANDLERS",
    "add_parsers",
    "baseline_line",
    "evaluate",
    "predict",
    "train_classify",
]
