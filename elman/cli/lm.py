"""``elman`` commands for the language models: train charlm/wordlm, generate, predict (next
words), evaluate."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict
from pathlib import Path

from elman.cli.options import (
    add_dataclass_options,
    add_run_options,
    config_from,
    integer,
    number,
    refuse_existing,
    refuse_unread,
    train_config,
)
from elman.data.text import read_text
from elman.decode import Sampling
from elman.nn import CELLS
from elman.tasks.lm import charlm, wordlm
from elman.train.checkpoint import read_meta, reading
from elman.train.distributed import is_main

CHARLM_HELP = {
    "cell": f"recurrent cell: {', '.join(CELLS)}",
    "embedding": "character embedding size",
    "hidden": "hidden units per layer",
    "layers": "stacked recurrent layers",
    "dropout": "dropout between layers and before the output layer, in [0, 1)",
    "batch_size": "parallel rows of text per batch (split across processes under torchrun)",
    "seq_len": "characters per chunk: how far back gradients flow (the state flows on)",
    "valid_fraction": "held-out tail of the text used for validation",
}
WORDLM_HELP = CHARLM_HELP | {
    "embedding": "word embedding size",
    "seq_len": "words per chunk: how far back gradients flow (the state flows on)",
    "embed_dropout": "dropout on the word embeddings, in [0, 1)",
    "tie": "share the input embedding with the output layer",
    "tokenizer": f"how text splits into tokens: {', '.join(wordlm.TOKENIZERS)}",
    "lower": "lower-case the text",
    "min_freq": "words seen fewer times in training become <unk>",
    "max_vocab": "largest vocabulary (BPE: its size; default 8000 there)",
    "valid_fraction": "held-out tail of the lines when no --valid file is given",
    "cutoffs": "adaptive softmax id cut-offs, e.g. --cutoffs 2000 10000 (needs --no-tie); "
    "much faster with large vocabularies",
}


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    c = train.add_parser(
        "charlm",
        help="character language model",
        description="Train a character-level language model on a UTF-8 text.",
    )
    c.add_argument(
        "text",
        nargs="*",
        help="UTF-8 text file(s); several files are separate documents, and the hidden state "
        "resets between them (default: the bundled Shakespeare corpus)",
    )
    c.add_argument(
        "--sample-length",
        type=integer,
        default=300,
        help="characters to generate after training (0: none)",
    )
    add_dataclass_options(c, charlm.CharLMConfig, CHARLM_HELP, asdict(charlm.DEFAULT_MODEL))
    add_run_options(c, charlm.DEFAULT_TRAIN)

    w = train.add_parser(
        "wordlm",
        help="word language model",
        description="Train a word-level language model: one sentence per line, each file a "
        "document, or the Brown corpus (--brown).",
    )
    w.add_argument("text", nargs="*", help="UTF-8 training text file(s), one sentence per line")
    w.add_argument("--brown", help="the Brown corpus folder instead (split 80/10/10 by file)")
    w.add_argument("--valid", help="validation text (default: the tail of the training lines)")
    w.add_argument("--test", help="test text, scored by `elman evaluate DIR`")
    w.add_argument(
        "--sample-length",
        type=integer,
        default=30,
        help="words to generate after training (0: none)",
    )
    add_dataclass_options(w, wordlm.WordLMConfig, WORDLM_HELP)
    add_run_options(w, wordlm.DEFAULT_TRAIN)

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
    g.add_argument("--temperature", type=number, default=0.8, help="0 = greedy; higher = wilder")
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
    g.add_argument(
        "--checkpoint", choices=("best", "last"), default="best", help="which checkpoint to use"
    )
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


def train_charlm(a: argparse.Namespace) -> None:
    out = refuse_existing(a.out, a.overwrite)
    train = train_config(a)
    metrics = charlm.train(a.text, config_from(a, charlm.CharLMConfig), train, out)
    report(metrics, out, "charlm")
    if a.sample_length and is_main():
        _sample_charlm(out, "\n", a.sample_length, Sampling(0.8, seed=train.seed))


def train_wordlm(a: argparse.Namespace) -> None:
    out = refuse_existing(a.out, a.overwrite)
    if bool(a.brown) == bool(a.text):
        raise ValueError("give either training text file(s) or --brown DIR (one of them)")
    config = config_from(a, wordlm.WordLMConfig)
    corpus = (
        wordlm.brown_corpus(a.brown)
        if a.brown
        else wordlm.text_corpus(a.text, a.valid, a.test, config.valid_fraction)
    )
    train = train_config(a)
    report(wordlm.train(corpus, config, train, out, epochs=a.epochs), out, "wordlm")
    if a.sample_length and is_main():
        generate(out, "wordlm", None, a.sample_length, Sampling(0.8, seed=train.seed))


def report(metrics: dict, out: Path, task: str) -> None:
    """The last validation figures of a run, in its task's units; a run that had nothing
    left to train (finished, or resumed to a step count it has reached) says so."""
    if not is_main():
        return
    if "val_loss" not in metrics:
        print(nothing_to_do(out), flush=True)
        return
    nats = metrics["val_loss"]
    if task == "charlm":
        what = f"{nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char"
    elif task == "wordlm":
        what = f"{nats:.4f} nats/word, perplexity {math.exp(nats):.2f}"
    else:
        what = ", ".join(f"{k[4:]} {v:.4f}" for k, v in metrics.items() if k.startswith("val_"))
    print(f"validation: {what}; checkpoints in {out}", flush=True)


def nothing_to_do(out: Path) -> str:
    """Why resuming the run in ``out`` trained no step: it is where it was asked to go."""
    path = Path(out) / "last.safetensors"
    if not path.exists():  # a fresh run stopped before its first step
        raise ValueError(
            f"no step was trained, so {out} holds no checkpoint (is --time-limit shorter "
            "than one step?)"
        )
    meta = read_meta(path)
    with reading(path):
        done, total = int(meta["position"]["step"]), int(meta["train"]["steps"])
    return (
        f"nothing to do: the run is at step {done} (of {total}); pass --steps M with "
        f"M > {done} to train further"
    )


def _sample_charlm(out, prompt, length, sampling, which="best", unknown="error") -> None:
    model, vocab, _ = charlm.load(out, which)
    sys.stdout.write(prompt)
    for ch in charlm.generate(model, vocab, prompt, length, sampling, unknown):
        sys.stdout.write(ch)
        sys.stdout.flush()
    sys.stdout.write("\n")


# Options of `elman generate` that only some tasks read: any other task would ignore them.
GENERATE_ONLY = {
    "prompt": ("charlm", "wordlm"),
    "top_k": ("charlm", "wordlm"),
    "top_p": ("charlm", "wordlm"),
    "unknown": ("charlm",),
    "beam": ("wordlm",),
    "nbest": ("wordlm",),
    "midi": ("music",),
    "primer_steps": ("music",),
    "primer_piece": ("music",),
    "primer_midi": ("music",),
}
LENGTHS = {"charlm": (500, "characters"), "wordlm": (50, "words"), "music": (64, "steps")}


def check_generate_options(a: argparse.Namespace, task: str) -> None:
    """An error for every option of ``elman generate`` given that a ``task`` model ignores."""
    refuse_unread(a, task, GENERATE_ONLY)
    if getattr(a, "nbest", None) is not None and getattr(a, "beam", None) is None:
        raise ValueError("--nbest lists the endings a beam search found: it needs --beam")


def generation_length(length: int | None, task: str) -> int:
    """``--length``, or the task's default when it is not given."""
    default, unit = LENGTHS[task]
    if length is None:
        return default
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"--length: expected a positive number of {unit}, got {length!r}")
    return length


def generate_command(a: argparse.Namespace, task: str) -> None:
    """``elman generate DIR`` on a language model: text, or with --beam the likeliest
    endings of the prompt's sentence (wordlm), refusing the options the model would ignore."""
    check_generate_options(a, task)
    if a.beam is not None:
        finish(Path(a.dir), task, a)
    else:
        sampling = Sampling(a.temperature, a.top_k, a.top_p, a.seed)
        generate(Path(a.dir), task, a.prompt, a.length, sampling, a.checkpoint, a.unknown)


def generate(
    out: Path,
    task: str,
    prompt: str | None,
    length: int | None,
    sampling: Sampling,
    which: str = "best",
    unknown: str | None = None,
) -> None:
    """Text from the language model in ``out`` after ``prompt``, on stdout as it comes."""
    if task not in ("charlm", "wordlm"):
        raise ValueError(f"`elman generate` needs a language model; {out} holds a {task} model")
    length = generation_length(length, task)
    if task == "charlm":
        prompt = "\n" if prompt is None else prompt
        _sample_charlm(out, prompt, length, sampling, which, unknown or "error")
        return
    model, tokenizer, _ = wordlm.load(out, which)
    prompt = prompt or ""
    sys.stdout.write(prompt)
    for piece in wordlm.generate(model, tokenizer, prompt, length, sampling):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def finish(out: Path, task: str, a: argparse.Namespace) -> None:
    """wordlm: the likeliest endings of the prompt's sentence, one per line with its log p."""
    if task != "wordlm":
        raise ValueError(f"--beam needs a word language model; {out} holds a {task} model")
    model, tokenizer, _ = wordlm.load(out, a.checkpoint)
    nbest = 3 if a.nbest is None else a.nbest
    for text, logprob in wordlm.finish(model, tokenizer, a.prompt or "", a.beam, nbest):
        print(f"{logprob:.3f}\t{(a.prompt or '') + text}")


def evaluate(a: argparse.Namespace, task: str) -> dict:
    """charlm: nats/bits per character; wordlm: perplexity (test split, or a text file)."""
    if task == "charlm":
        model, vocab, meta = charlm.load(a.dir, a.checkpoint)
        if a.data is None:
            ids, what = charlm.validation_ids(a.dir), "validation split"
        else:
            ids, what = vocab.encode(read_text(a.data), "skip"), a.data
        nats = charlm.evaluate_ids(model, ids)
        return {
            "data": what,
            "chars": int(ids.numel()),
            "nats_per_char": nats,
            "bits_per_char": nats / math.log(2),
            "step": meta.get("step"),
        }
    if a.data is None:  # "test", the parser's default, falls back to valid in a run without one
        split = None if a.split in (None, "test") else a.split
        return wordlm.evaluate_split(a.dir, split, a.checkpoint)
    model, tokenizer, _ = wordlm.load(a.dir, a.checkpoint)
    lines = [line.strip() for line in read_text(a.data).splitlines() if line.strip()]
    return wordlm.score_documents(model, tokenizer, [lines]) | {"data": a.data}


def predict_words(out: Path, lines: list[str], top_k: int, which: str) -> list[dict]:
    """Each line's likeliest next words (autocomplete)."""
    model, tokenizer, _ = wordlm.load(out, which)
    return [
        {
            "text": line,
            "next": [
                {"word": w, "p": p} for w, p in wordlm.complete(model, tokenizer, line, top_k)
            ],
        }
        for line in lines
    ]
