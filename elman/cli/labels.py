"""``elman`` commands for classification and tagging: train, predict, evaluate."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from pathlib import Path

from elman.cli.options import (
    add_dataclass_options,
    add_run_options,
    config_from,
    integer,
    number,
    refuse_existing,
    train_config,
)
from elman.data.labelled import MAX_CHARS, Examples, check_max_chars, read_table, too_long
from elman.data.ucr import read_ts
from elman.nn import CELLS
from elman.nn.pooling import POOLINGS
from elman.tasks.classify import task as classify
from elman.tasks.scores import format_confusion
from elman.tasks.tag import task as tag
from elman.train.distributed import is_main

CLASSIFY_HELP = {
    "cell": f"recurrent cell: {', '.join(CELLS)}",
    "hidden": "hidden units per layer and direction",
    "layers": "stacked recurrent layers",
    "bidirectional": "read each sequence in both directions",
    "pooling": f"how outputs become one vector: {', '.join(POOLINGS)}",
    "dropout": "dropout between layers and before the classifier, in [0, 1)",
    "conv": "add the LSTM-FCN convolutional branch (None: on for numeric series, off for "
    "text; --no-conv for a series model that streams)",
    "embedding": "text: word embedding size",
    "embed_dropout": "text: dropout on the embeddings, in [0, 1)",
    "word_dropout": "text: share of training tokens replaced by <unk>, in [0, 1)",
    "tokenizer": "text: char, word, whitespace or bpe",
    "lower": "text: lower-case before tokenizing",
    "min_freq": "text: rarer tokens become <unk>",
    "max_vocab": "text: largest vocabulary",
    "batch_size": "examples per batch",
}
TAG_HELP = {
    "cell": f"recurrent cell (run in both directions): {', '.join(CELLS)}",
    "word_embedding": "word embedding size",
    "char_embedding": "character embedding size",
    "char_filters": "character CNN filters (0: no character features)",
    "hidden": "hidden units per direction",
    "layers": "stacked recurrent layers",
    "dropout": "dropout around the recurrent layers, in [0, 1)",
    "crf": "CRF output layer (Viterbi decoding) instead of a per-word softmax",
    "min_freq": "rarer training words become <unk> (so spelling alone is learned too)",
    "batch_size": "sentences per batch",
}
CLASSIFY_TRAIN = {"steps": 1000, "lr": 2e-3, "eval_every": 100, "patience": None}
TAG_TRAIN = {"steps": 6000, "lr": 2e-3, "eval_every": 500, "clip_norm": 5.0}


def add_parsers(train: argparse._SubParsersAction) -> None:
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
    add_max_chars(src, "a CSV/TSV field")
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
    add_dataclass_options(c, classify.ClassifyConfig, CLASSIFY_HELP)
    add_run_options(c, CLASSIFY_TRAIN)

    t = train.add_parser(
        "tag",
        help="sequence tagger (e.g. part of speech)",
        description="Train a BiLSTM(-CRF) tagger on the Brown corpus or word<TAB>tag files.",
    )
    t.add_argument("--brown", help="the Brown corpus folder (POS tags, split 80/10/10 by file)")
    t.add_argument(
        "--train", dest="train_file", help="word<TAB>tag file, blank line between sentences"
    )
    t.add_argument("--valid", help="validation file in the same format")
    t.add_argument("--test", help="test file, scored by `elman evaluate`")
    add_dataclass_options(t, tag.TagConfig, TAG_HELP)
    add_run_options(t, TAG_TRAIN)


def _classify_source(a: argparse.Namespace) -> dict:
    given = [n for n in ("sentiment", "train_file", "ts", "ucr") if getattr(a, n)]
    if len(given) != 1:
        raise ValueError(
            "give exactly one data source: --sentiment DIR, --train CSV, --ts FILE or --ucr NAME"
            + (f" (got {', '.join('--' + g.replace('_file', '') for g in given)})" if given else "")
        )
    common = {"valid_fraction": a.valid_fraction, "seed": a.seed}
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
    out = refuse_existing(a.out, a.overwrite)
    config = config_from(a, classify.ClassifyConfig)
    source = _classify_source(a)
    metrics = classify.train(source, config, train_config(a), out, epochs=a.epochs)
    if source["kind"] in ("ts", "ucr") and is_main():
        print(baseline_line(classify.scored_with_baselines(out)), flush=True)
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


def train_tag(a: argparse.Namespace) -> dict:
    out = refuse_existing(a.out, a.overwrite)
    if bool(a.brown) == bool(a.train_file):
        raise ValueError("give either --brown DIR or --train FILE (with --valid FILE)")
    if a.brown:
        source = {"kind": "brown", "path": str(Path(a.brown).resolve())}
    else:
        if not a.valid:
            raise ValueError("--train needs --valid FILE (word<TAB>tag) to validate on")
        source = {
            "kind": "conll",
            "train": str(Path(a.train_file).resolve()),
            "valid": str(Path(a.valid).resolve()),
            "test": str(Path(a.test).resolve()) if a.test else None,
        }
    return tag.train(source, config_from(a, tag.TagConfig), train_config(a), out, epochs=a.epochs)


def add_max_chars(p: argparse._ActionsContainer, what: str) -> None:
    p.add_argument(
        "--max-chars",
        type=integer,
        default=MAX_CHARS,
        help=f"longest {what} in characters (longer ones are an error, not a slow or "
        "out-of-memory run)",
    )


def read_lines(path: str, stdin_lines: Iterable[str], max_chars: int, need: str) -> list[str]:
    """The lines of ``path`` (``-``: ``stdin_lines``), each non-empty and at most ``max_chars``
    characters (an error names the first that is not); ``need`` says what a line holds."""
    check_max_chars(max_chars)
    name = "stdin" if path == "-" else Path(_input_file(path)).name
    lines = []
    for k, line in enumerate(stdin_lines if path == "-" else _utf8_lines(path), 1):
        line = line.rstrip("\r\n")
        if len(line) > max_chars:
            raise ValueError(too_long(f"{name} line {k}", len(line), max_chars))
        lines.append(line)
    if not lines:
        raise ValueError(f"{name}: no input lines; expected at least one line with {need}")
    empty = [i + 1 for i, t in enumerate(lines) if not t.strip()]
    if empty:
        raise ValueError(f"input line(s) {empty[:5]} are empty; every line needs {need}")
    return lines


def _utf8_lines(path: str) -> Iterator[str]:
    """The lines of a file, one at a time; bytes that are not UTF-8 name their line."""
    with open(path, "rb") as f:
        for k, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                where = f"{Path(path).name} line {k}"
                raise ValueError(f"{where}: not UTF-8 text ({e.reason})") from None


def _input_file(path: str) -> str:
    if Path(path).is_dir():
        raise ValueError(f"input {path!r} is a directory; expected a file, or - for stdin")
    return path


def read_inputs(
    path: str | None, kind: str, text_column: str, stdin_lines, max_chars: int = MAX_CHARS
) -> Examples:
    """Inputs to predict: a .ts file, a CSV/TSV (``text_column``), or text lines."""
    if path and path.endswith(".ts"):
        return read_ts(_input_file(path), max_chars).examples()
    if path and path.endswith((".csv", ".tsv")):
        return read_table(_input_file(path), text_column, None, max_chars)
    texts = read_lines(path or "-", stdin_lines, max_chars, "text")
    if kind != "text":
        raise ValueError("this model reads numeric series: give a .ts file")
    return Examples("text", texts, [""] * len(texts))


def predict(out: Path, task: str, inputs: Examples, which: str) -> list[dict]:
    """Each input's label and class probabilities (classify) or tags (tag), with the input:
    its text, or for series its position ``id`` in the file (from 0)."""
    if task == "classify":
        rows = classify.load(out, which).predict(inputs.inputs)
        if inputs.kind == "text":
            return [{"text": t} | r for t, r in zip(inputs.inputs, rows, strict=True)]
        return [{"id": i} | r for i, r in enumerate(rows)]
    model, vocab, _ = tag.load(out, which)
    sentences = [str(t).split() for t in inputs.inputs]
    return [
        {"words": s, "tags": t}
        for s, t in zip(sentences, tag.tag(model, vocab, sentences), strict=True)
    ]


def csv_row(row: dict) -> dict:
    """One flat CSV row of a ``predict`` result: class probabilities become ``p_<class>``
    columns, a tagged sentence its text and space-separated tags, a word LM's next words
    ``next_<i>`` and ``p_<i>`` columns."""
    flat = {k: v for k, v in row.items() if k not in ("probabilities", "words", "tags", "next")}
    if "probabilities" in row:
        flat |= {f"p_{c}": p for c, p in row["probabilities"].items()}
    if "words" in row:
        flat |= {"text": " ".join(row["words"]), "tags": " ".join(row["tags"])}
    for i, item in enumerate(row.get("next", []), 1):
        flat |= {f"next_{i}": item["word"], f"p_{i}": item["p"]}
    return flat


def evaluate(a: argparse.Namespace, task: str) -> dict:
    """classify: accuracy, macro-F1 and confusion (printed; PNG beside the run); tag: token and
    unseen-word accuracy."""
    if task == "tag":
        if a.data is None:
            return tag.evaluate_split(a.dir, a.split or "test", a.checkpoint)
        model, vocab, _ = tag.load(a.dir, a.checkpoint)
        sentences = tag.read_conll(a.data)
        tag.check_tags(sentences, vocab.tags, a.data)
        data = tag.encode_sentences(vocab, sentences, "evaluation")
        return tag.accuracy(model, data) | {"data": a.data}
    model = classify.load(a.dir, a.checkpoint)
    if a.data is None:
        data, what = classify.held_out_test(a.dir), "test split"
    elif a.data.endswith(".ts"):
        data, what = read_ts(a.data).examples(), a.data
    else:
        data, what = read_table(a.data, a.text_column, a.label_column, a.max_chars), a.data
    result = model.evaluate(data) | {"data": what}
    if model.encoder.kind == "series":
        result["baselines"] = _baselines(a.dir, data)
    if is_main():
        print(format_confusion(result["confusion"], model.classes), flush=True)
        result["confusion_png"] = _plot_confusion(result, model.classes, Path(a.dir))
    return result


def _baselines(out: str, scored: Examples) -> dict:
    """Majority-class and 1-NN accuracy on ``scored`` from the run's training split (a
    training file that moved since is noted, not an error: the model's scores still stand)."""
    try:
        train = classify.run_data(out)[0]
    except OSError as e:
        return {"unavailable": f"the run's training data cannot be read: {e}"}
    return classify.baselines(train, scored)


def _plot_confusion(result: dict, classes, out: Path) -> str | None:
    try:
        from elman.viz.confusion import plot_confusion
    except ImportError:
        return None
    return str(plot_confusion(result["confusion"], classes, out / "confusion.png"))
