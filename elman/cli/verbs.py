"""The commands every task may answer on a run directory (generate, predict, evaluate,
explain): their shared options, and the dispatch to the handler the run's task registers in
its ``command.HANDLERS``. Nothing here knows a task by name."""

from __future__ import annotations

import argparse

from elman.decode import TEMPERATURE
from elman.tasks.options import integer, number
from elman.tasks.registry import specs
from elman.tasks.spec import Handler, Run, TaskSpec
from elman.tasks.textio import add_max_chars

COMMANDS = ("generate", "predict", "evaluate", "explain")


def handlers(spec: TaskSpec) -> dict[str, Handler]:
    return getattr(spec.commands(), "HANDLERS", {})


def handler_of(command: str, run: Run) -> Handler:
    """The handler of ``run``'s task for ``command``; a task that does not answer it is a
    ValueError naming the tasks that do and the commands this one answers."""
    found = handlers(run.spec).get(command)
    if found is None:
        able = [s.name for s in specs() if command in handlers(s)]
        names = ", ".join(able[:-1]) + f" or {able[-1]}" if len(able) > 1 else "".join(able)
        answers = ", ".join(f"`elman {c}`" for c in handlers(run.spec)) or "no shared command"
        raise ValueError(
            f"`elman {command}` needs a {names} model; {run.path} holds a {run.task} model "
            f"(which answers {answers}; {run.instead(command)})"
        )
    return found


def refuse_unread(args: argparse.Namespace, command: str, run: Run) -> Handler:
    """The handler of ``run``'s task for ``command``, after refusing the first optional option
    given that it does not read (some other task's handler reads it)."""
    handler = handler_of(command, run)
    readers: dict[str, list[str]] = {}
    for spec in specs():
        other = handlers(spec).get(command)
        for name in other.reads if other else ():
            readers.setdefault(name, []).append(spec.name)
    for name, tasks in readers.items():
        if getattr(args, name, None) is not None and name not in handler.reads:
            raise ValueError(
                f"--{name.replace('_', '-')} is for {' and '.join(tasks)} models; "
                f"{args.dir} holds a {run.task} model"
            )
    return handler


EXPLAIN_MAX_LENGTH = 1000  # occlusion saliency runs the model once per piece


# ---- the shared commands' parsers ---------------------------------------------------------
def add_parsers(sub: argparse._SubParsersAction) -> None:
    _generate(sub)
    _predict(sub)
    _evaluate(sub)
    _explain(sub)


def _checkpoint(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help=help)


def _search(p: argparse.ArgumentParser, prefix: str) -> None:
    """--beam and --alpha, None when not given (the task reads its defaults)."""
    p.add_argument("--beam", type=integer, help=f"{prefix}beam width (default: 1, greedy)")
    p.add_argument(
        "--alpha", type=number, help=f"{prefix}length normalisation exponent (default: 0.0)"
    )


def _generate(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="generate text (language models) or MIDI (music models)")
    g.add_argument("dir", help="model directory written by `elman train charlm|wordlm|music`")
    g.add_argument("--prompt", default=None, help="text to prime the model with")
    g.add_argument(
        "--length",
        type=integer,
        default=None,
        help="characters (charlm, default 500), words (wordlm, default 50) or steps "
        "(music, default 64)",
    )
    g.add_argument(
        "--temperature",
        type=number,
        default=TEMPERATURE,
        help=f"0 = greedy; higher = wilder (default: {TEMPERATURE}, as the server)",
    )
    g.add_argument("--top-k", type=integer, default=None, help="sample among the k likeliest")
    g.add_argument("--top-p", type=number, default=None, help="nucleus sampling mass, in (0, 1]")
    g.add_argument("--seed", type=integer, default=None, help="fixed seed: reproducible samples")
    g.add_argument(
        "--beam",
        type=integer,
        default=None,
        help="wordlm: instead of sampling, list the likeliest endings of the prompt's "
        "sentence found by a beam this wide (--nbest of them, with log-probabilities)",
    )
    g.add_argument("--nbest", type=integer, default=None, help="with --beam: endings to list (3)")
    _checkpoint(g, "which checkpoint to use")
    g.add_argument(
        "--midi", default=None, help="music: the MIDI file to write (default DIR/sample.mid)"
    )
    g.add_argument(
        "--primer-steps",
        type=integer,
        default=None,
        help="music: steps of the primer piece to start from (default 8)",
    )
    g.add_argument(
        "--primer-piece",
        type=integer,
        default=None,
        help="music: which held-out test piece primes (default 0)",
    )
    g.add_argument(
        "--primer-midi", default=None, help="music (chorales): prime from this MIDI file"
    )
    g.add_argument(
        "--unknown",
        choices=("error", "skip"),
        default=None,
        help="charlm: prompt characters the model never saw: error (the default), or skip them",
    )


def _predict(sub: argparse._SubParsersAction) -> None:
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
    add_max_chars(pr, "input line or CSV field")
    _checkpoint(pr)


def _evaluate(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="metrics of a trained model")
    e.add_argument("dir", help="model directory")
    e.add_argument(
        "data",
        nargs="?",
        help="data to score (default: the run's held-out split): text (charlm/wordlm), "
        "labelled CSV/TSV or .ts (classify), word<TAB>tag (tag), source<TAB>target (seq2seq), "
        "a manifest of audio and transcripts (asr)",
    )
    e.add_argument(
        "--split",
        choices=("valid", "test"),
        help="wordlm/tag/seq2seq/music/asr: which held-out split to score without DATA (default: "
        "test; a word LM without one scores valid)",
    )
    _search(e, "seq2seq, asr: ")
    e.add_argument("--lm", help="asr: a charlm run fused into the beam search")
    e.add_argument("--lm-weight", type=number, help="asr: the LM's weight (default: 0.5)")
    e.add_argument("--word-bonus", type=number, help="asr: bonus per symbol (default: 1.0)")
    e.add_argument("--word-lm", help="asr: a wordlm run fused into the beam search")
    e.add_argument("--word-lm-weight", type=number, help="asr: its weight (default: 0.5)")
    e.add_argument("--lexicon", help="asr: a file of words; a penalty per word outside it")
    e.add_argument("--lexicon-penalty", type=number, help="asr: that penalty (default: 5.0)")
    e.add_argument("--text-column", default="text", help="classify CSV: the text column")
    e.add_argument("--label-column", default="label", help="classify CSV: the label column")
    add_max_chars(e, "classify CSV field")
    _checkpoint(e)


def _explain(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser(
        "explain",
        help="look inside a model: attention (seq2seq), activations and saliency "
        "(charlm/wordlm), the CTC posteriorgram (asr)",
    )
    ex.add_argument("dir", help="model directory")
    ex.add_argument(
        "text",
        help="seq2seq: the input to transduce; charlm/wordlm: a text to read; asr: an audio file",
    )
    ex.add_argument(
        "--png",
        help="seq2seq: the heat map (default: DIR/attention-TEXT.png); asr: the posteriorgram "
        "(default: DIR/posteriorgram-NAME.png)",
    )
    _search(ex, "seq2seq: ")
    ex.add_argument("--out", help="charlm/wordlm: folder for the files (default: DIR/explain)")
    ex.add_argument("--unit", type=integer, default=None, help="the unit to colour the text by")
    ex.add_argument(
        "--signal",
        help="find units that track it: quotes, line-position, or a file with one "
        "number per character (charlm) or token (wordlm)",
    )
    ex.add_argument("--layer", type=integer, default=-1, help="which layer (default: the last)")
    ex.add_argument(
        "--kind", default="h", help="h, c (LSTM) or a gate: i f g o (LSTM), r z n (GRU)"
    )
    ex.add_argument("--flow-steps", type=integer, default=100, help="gradient-flow sequence length")
    ex.add_argument(
        "--max-length",
        type=integer,
        default=EXPLAIN_MAX_LENGTH,
        help="charlm/wordlm: the longest TEXT, in characters or tokens; occlusion saliency "
        "runs the model once per piece, so the time grows with the square of the length "
        f"(default: {EXPLAIN_MAX_LENGTH}, about half a minute on a 2-core CPU for the default "
        "model)",
    )
    _checkpoint(ex)


__all__ = ["COMMANDS", "Handler", "add_parsers", "handler_of", "handlers", "refuse_unread"]
