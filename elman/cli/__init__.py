"""The ``elman`` command: a thin shell that parses, validates, and calls tasks and the trainer.

elman train charlm|wordlm|classify|tag|seq2seq|forecast|music ... --out DIR [options]
elman generate DIR --prompt "ROMEO:" --length 500 --temperature 0.8     (language models)
elman generate DIR --midi out.mid [--primer-steps 8 --length 64]       (music)
elman predict DIR [INPUT|-] [--format jsonl|csv]    next words, labels or tags per input line
elman translate DIR [INPUT|-] [--beam 5 --nbest 5]  seq2seq outputs per input line
elman explain DIR TEXT [--signal quotes --out D]    activations, saliency, gradient flow
                                                    (charlm/wordlm); attention (seq2seq)
elman forecast DIR [DATA] [--horizon H --plot PNG] point forecasts and intervals (CSV)
elman backtest DIR DATA [--origins 5]               rolling-origin scores beside baselines
elman detect DIR DATA [--quantile 0.99]             anomaly scores and flags (CSV)
elman evaluate DIR [DATA]                           the task's metrics (default: held-out data)
elman export DIR --format onnx [--mode sequence|step]  ONNX graph, checked in onnxruntime
elman serve DIR [DIR...] [--host --port --token]      HTTP API with streaming sessions
elman resume DIR [--steps N]
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import re
import sys
from pathlib import Path

from elman.cli import export as export_cli
from elman.cli import insight, labels, lm
from elman.cli import music as music_cli
from elman.cli import seq2seq as s2s
from elman.cli import series as ts
from elman.cli import serve as serve_cli
from elman.cli.options import integer, refuse_unread
from elman.tasks.classify import task as classify
from elman.tasks.forecast import trained as forecast_runs
from elman.tasks.lm import charlm, wordlm
from elman.tasks.music import task as music
from elman.tasks.rundir import task_of
from elman.tasks.seq2seq import task as seq2seq
from elman.tasks.tag import task as tag
from elman.train import CheckpointError, NonFiniteError
from elman.train.checkpoint import read_meta, reading
from elman.train.distributed import init_from_env, shutdown

RESUMERS = {
    "charlm": charlm.resume,
    "wordlm": wordlm.resume,
    "classify": classify.resume,
    "tag": tag.resume,
    "seq2seq": seq2seq.resume,
    "forecast": forecast_runs.resume,
    "music": music.resume,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="elman", description="Sequence models with RNNs.")
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model").add_subparsers(dest="task", required=True)
    lm.add_parsers(train, sub)
    labels.add_parsers(train)
    s2s.add_parsers(train, sub)
    ts.add_parsers(train, sub)
    insight.add_parsers(sub)
    music_cli.add_parsers(train)
    export_cli.add_parsers(sub)
    serve_cli.add_parsers(sub)

    pr = sub.add_parser("predict", help="predict with a trained wordlm, classify or tag model")
    pr.add_argument("dir", help="model directory")
    pr.add_argument(
        "input",
        nargs="?",
        default="-",
        help="text lines (a file, or - for stdin), a CSV/TSV (--text-column), or a "
        ".ts file of series; tag models read whitespace-separated words",
    )
    pr.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format")
    pr.add_argument("--text-column", default="text", help="the input CSV's text column")
    pr.add_argument(
        "--top-k", type=integer, help="wordlm: next words to list per line (default: 5)"
    )
    labels.add_max_chars(pr, "input line or CSV field")
    pr.add_argument("--checkpoint", choices=("best", "last"), default="best")

    e = sub.add_parser("evaluate", help="metrics of a trained model")
    e.add_argument("dir", help="model directory")
    e.add_argument(
        "data",
        nargs="?",
        help="data to score (default: the run's held-out split): text (charlm/wordlm), "
        "labelled CSV/TSV or .ts (classify), word<TAB>tag (tag), source<TAB>target (seq2seq)",
    )
    e.add_argument(
        "--split",
        choices=("valid", "test"),
        help="wordlm/tag/seq2seq/music: which held-out split to score without DATA (default: "
        "test; a word LM without one scores valid)",
    )
    s2s.add_search_options(e, "seq2seq: ")
    e.add_argument("--text-column", default="text", help="classify CSV: the text column")
    e.add_argument("--label-column", default="label", help="classify CSV: the label column")
    labels.add_max_chars(e, "classify CSV field")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best")

    r = sub.add_parser("resume", help="continue an interrupted run exactly")
    r.add_argument("dir", help="model directory")
    r.add_argument("--steps", type=integer, default=None, help="new total step count")
    return p


def _require(out: str, task: str, command: str) -> None:
    found = task_of(out)
    if found != task:
        raise ValueError(f"`elman {command}` needs a {task} model; {out} holds a {found} model")


def _write(rows: list[dict], fmt: str, flat=None) -> None:
    """Rows as JSON lines, or as CSV: ``flat`` turns a row into flat columns (else nested
    values become JSON text); the header is every column of every row, in order of appearance."""
    if fmt == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    flat = flat or (lambda r: r)
    table = [
        {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in flat(r).items()}
        for r in rows
    ]
    writer = csv.DictWriter(sys.stdout, fieldnames=list(dict.fromkeys(k for r in table for k in r)))
    writer.writeheader()
    writer.writerows(table)


# Options of `elman predict` and `elman evaluate` that only some tasks read.
PREDICT_ONLY = {"top_k": ("wordlm",)}
EVALUATE_ONLY = {
    "split": ("wordlm", "tag", "seq2seq", "music"),
    "beam": ("seq2seq",),
    "alpha": ("seq2seq",),
}


def _predict(a: argparse.Namespace) -> None:
    task = task_of(a.dir)
    refuse_unread(a, task, PREDICT_ONLY)
    kind = "text"
    if task == "classify":
        kind = classify.load(a.dir, a.checkpoint).encoder.kind
    elif task not in ("wordlm", "tag"):
        raise ValueError(
            f"`elman predict` serves wordlm, classify and tag models; {a.dir} "
            f"holds a {task} model (use `elman generate`, `translate` or `forecast`)"
        )
    inputs = labels.read_inputs(a.input, kind, a.text_column, sys.stdin, a.max_chars)
    if task == "wordlm":
        top_k = 5 if a.top_k is None else a.top_k
        rows = lm.predict_words(Path(a.dir), [str(t) for t in inputs.inputs], top_k, a.checkpoint)
    else:
        rows = labels.predict(Path(a.dir), task, inputs, a.checkpoint)
    _write(rows, a.format, labels.csv_row)


def _run(args: argparse.Namespace) -> None:
    if args.command == "train":
        train = {
            "charlm": lm.train_charlm,
            "wordlm": lm.train_wordlm,
            "classify": lambda a: lm.report(labels.train_classify(a), Path(a.out), "classify"),
            "tag": lambda a: lm.report(labels.train_tag(a), Path(a.out), "tag"),
            "seq2seq": lambda a: lm.report(s2s.train(a), Path(a.out), "seq2seq"),
            "forecast": lambda a: lm.report(ts.train(a), Path(a.out), "forecast"),
            "music": lambda a: lm.report(music_cli.train(a), Path(a.out), "music"),
        }
        train[args.task](args)
    elif args.command == "generate":
        task = task_of(args.dir)
        if task == "music":
            music_cli.generate(args)  # it checks the generate options against music too
        else:
            lm.generate_command(args, task)
    elif args.command == "predict":
        _predict(args)
    elif args.command == "translate":
        _require(args.dir, "seq2seq", "translate")
        _write(s2s.translate(args, sys.stdin), args.format)
    elif args.command == "forecast":
        _require(args.dir, "forecast", "forecast")
        ts.forecast(args)
    elif args.command == "detect":
        _require(args.dir, "forecast", "detect")
        ts.detect(args)
    elif args.command == "backtest":
        _require(args.dir, "forecast", "backtest")
        print(json.dumps(ts.backtest(args)))
    elif args.command == "serve":
        serve_cli.serve(args)
    elif args.command == "export":
        print(json.dumps(export_cli.export(args, task_of(args.dir))))
    elif args.command == "explain":
        print(json.dumps(insight.explain(args, task_of(args.dir))))
    elif args.command == "evaluate":
        task = task_of(args.dir)
        refuse_unread(args, task, EVALUATE_ONLY)
        if task in ("charlm", "wordlm"):
            result = lm.evaluate(args, task)
        elif task == "seq2seq":
            result = s2s.evaluate(args)
        elif task == "forecast":
            raise ValueError("forecast models are scored by `elman backtest DIR DATA`")
        elif task == "music":
            result = music.evaluate_split(args.dir, args.split or "test", args.checkpoint)
        else:
            result = labels.evaluate(args, task)
        print(json.dumps(result))
    elif args.command == "resume":
        task = task_of(args.dir)
        lm.report(RESUMERS[task](args.dir, args.steps), Path(args.dir), task)
    else:
        raise ValueError(f"unknown command {args.command!r}")


def _run_device(args: argparse.Namespace) -> str:
    """The device the command trains on: its --device, or for resume the run's own."""
    if args.command == "resume":
        path = Path(args.dir) / "last.safetensors"
        try:
            with reading(path):
                return str(read_meta(path)["train"].get("device", "cpu"))
        except CheckpointError:
            return "cpu"  # _run reports what is wrong with the directory
    return getattr(args, "device", "cpu")


def os_error(e: OSError) -> str:
    """One line for a failed read or write, naming the path."""
    where = f" ({e.filename})" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"the disk is full{where}; nothing was replaced: the last good checkpoint and "
            "every earlier file are as they were (`elman resume DIR` once there is room)"
        )
    return f"{e.strerror or e}{where}"


def out_of_memory(e: BaseException) -> str:
    wanted = re.search(r"allocate (\d+) bytes", str(e))
    size = f" ({int(wanted.group(1)) / 2**30:.3g} GiB at once)" if wanted else ""
    return (
        f"not enough memory{size}: choose smaller sizes (hidden, embedding, layers, batch) "
        "or less data per batch"
    )


def _error(message: str) -> int:
    """Print one line (torch's messages run over several) and return the exit status 2."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"elman: error: {line}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    init_from_env(_run_device(args))
    try:
        _run(args)
    except (
        ValueError,
        TypeError,
        ImportError,
        CheckpointError,
        NonFiniteError,
    ) as e:
        return _error(str(e))
    except OSError as e:  # a path the user gave: missing, a directory, unwritable, disk full
        return _error(os_error(e))
    except MemoryError as e:
        return _error(out_of_memory(e))
    except RuntimeError as e:  # torch reports a failed allocation as a RuntimeError
        if "can't allocate memory" not in str(e):
            raise
        return _error(out_of_memory(e))
    except KeyboardInterrupt:
        print(
            "elman: interrupted; the last checkpoint is intact (`elman resume DIR`)",
            file=sys.stderr,
        )
        return 130
    finally:
        shutdown()
    return 0


__all__ = ["main", "task_of"]
