"""``elman`` commands for the language models: ``elman train charlm|wordlm`` (then a sample),
and how a charlm or wordlm run answers ``elman generate``, ``predict`` (next words, wordlm),
``evaluate`` and ``explain`` (``CHARLM_HANDLERS``, ``WORDLM_HANDLERS``; each task's own
adapter, ``charlm_command`` and ``wordlm_command``, exposes its half)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from elman.decode import Sampling
from elman.files import output_dir
from elman.tasks import textio
from elman.tasks.lm import charlm, wordlm
from elman.tasks.lm import explain as insight
from elman.tasks.lm.finetune import shape_of
from elman.tasks.lm.run import CHARLM, WORDLM, CharRun, LanguageRun, WordRun
from elman.tasks.options import (
    add_init_option,
    add_task_options,
    config_from,
    integer,
    refuse_existing,
    train_config,
)
from elman.tasks.registry import load_run
from elman.tasks.spec import Handler
from elman.train.distributed import is_main


# ---- elman train charlm|wordlm -----------------------------------------------------------
def add_charlm_parser(train: argparse._SubParsersAction) -> None:
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
    add_task_options(c, CHARLM)
    add_init_option(c, derive_lm_shape, lm_help("character"), single=True)
    c.set_defaults(train=train_charlm, after_train=sampler(CharRun.open))


def add_wordlm_parser(train: argparse._SubParsersAction) -> None:
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
    add_task_options(w, WORDLM)
    add_init_option(w, derive_lm_shape, lm_help("word"), single=True)
    w.set_defaults(train=train_wordlm, after_train=sampler(WordRun.open))


def lm_help(kind: str) -> str:
    return (
        f"start from a pretrained {kind} LM run: its vocabulary, model and every weight, "
        "fine-tuned on this text (ULMFiT); its sizes become the defaults"
    )


def derive_lm_shape(a: argparse.Namespace) -> dict:
    """The model fields ``--init-from`` implies: the source LM's (none without it)."""
    return shape_of(load_run(a.init_from).config) if a.init_from else {}


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    """``elman train charlm`` and ``elman train wordlm`` (no command of their own in ``sub``)."""
    add_charlm_parser(train)
    add_wordlm_parser(train)


def train_charlm(a: argparse.Namespace) -> dict:
    out = refuse_existing(a.out, a.overwrite)
    config = config_from(a, charlm.CharLMConfig)
    return charlm.train(a.text, config, train_config(a), out, init_from=a.init_from)


def train_wordlm(a: argparse.Namespace) -> dict:
    out = refuse_existing(a.out, a.overwrite)
    if bool(a.brown) == bool(a.text):
        raise ValueError("give either training text file(s) or --brown DIR (one of them)")
    config = config_from(a, wordlm.WordLMConfig)
    corpus = (
        wordlm.brown_corpus(a.brown)
        if a.brown
        else wordlm.text_corpus(a.text, a.valid, a.test, config.valid_fraction)
    )
    return wordlm.train(
        corpus, config, train_config(a), out, epochs=a.epochs, init_from=a.init_from
    )


def sampler(load: Callable[[Path], LanguageRun]) -> Callable[[argparse.Namespace], None]:
    """What prints, after the shell's report of a training run, ``--sample-length`` pieces
    sampled from its best checkpoint (temperature 0.8, the run's seed)."""

    def sample_after_training(a: argparse.Namespace) -> None:
        if a.sample_length and is_main():
            run = load(Path(a.out))
            if run.backward:  # it cannot continue text
                return
            write_sample(run, run.default_prompt, a.sample_length, Sampling(0.8, seed=a.seed))

    return sample_after_training


# ---- elman generate DIR --------------------------------------------------------------------
def generation_length(length: int | None, run: LanguageRun) -> int:
    """``--length``, or the run's default when it is not given."""
    if length is None:
        return run.default_length
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"--length: expected a positive number of {run.unit}, got {length!r}")
    return length


def write_sample(run: LanguageRun, prompt: str, length: int, sampling: Sampling, **options) -> None:
    """``prompt`` and what the model writes after it, on stdout as it comes."""
    sys.stdout.write(prompt)
    for piece in run.generate(prompt, length, sampling, **options):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def _sample(a: argparse.Namespace, run: LanguageRun, **options) -> None:
    sampling = Sampling(a.temperature, a.top_k, a.top_p, a.seed)
    length = generation_length(a.length, run)
    prompt = run.default_prompt if a.prompt is None else a.prompt
    write_sample(run, prompt, length, sampling, **options)


def generate_chars(a: argparse.Namespace, run: CharRun) -> None:
    """Text after ``--prompt`` (default: a line break)."""
    _sample(a, run, unknown=a.unknown or "error")


def generate_words(a: argparse.Namespace, run: WordRun) -> None:
    """Text after ``--prompt``, or with ``--beam`` the likeliest endings of the prompt's
    sentence, one per line after its log-probability."""
    if a.nbest is not None and a.beam is None:
        raise ValueError("--nbest lists the endings a beam search found: it needs --beam")
    if a.beam is None:
        _sample(a, run)
        return
    prompt = a.prompt or ""
    for text, logprob in run.finish(prompt, a.beam, 3 if a.nbest is None else a.nbest):
        print(f"{logprob:.3f}\t{prompt + text}")


# ---- elman predict|evaluate DIR ------------------------------------------------------------
def predict_words(a: argparse.Namespace, run: WordRun) -> None:
    """Each input line's ``--top-k`` (default 5) likeliest next words."""
    inputs = textio.read_inputs(a.input, "text", a.text_column, sys.stdin, a.max_chars)
    top_k = 5 if a.top_k is None else a.top_k
    rows = run.predict([str(t) for t in inputs.inputs], top_k)
    textio.write_rows(rows, a.format, textio.csv_row)


def evaluate_chars(a: argparse.Namespace, run: CharRun) -> None:
    """Nats and bits per character on DATA, or on the held-out tail of the training text."""
    print(json.dumps(run.evaluate(a.data)))


def evaluate_words(a: argparse.Namespace, run: WordRun) -> None:
    """Perplexity on DATA, or on the run's ``--split`` (test, or valid without a test split)."""
    split = None if a.split in (None, "test") else a.split  # test falls back to valid
    print(json.dumps(run.evaluate(a.data, split) if a.data is None else run.evaluate(a.data)))


# ---- elman explain DIR TEXT ----------------------------------------------------------------
def explain(a: argparse.Namespace, run: LanguageRun) -> None:
    """Unit activations, saliency, saturation and gradient flow over TEXT (as JSON; the files
    go to ``--out``, default DIR/explain)."""
    out = output_dir(a.out, "--out") if a.out else Path(a.dir) / "explain"
    if a.flow_steps < 1:
        raise ValueError(f"--flow-steps: expected a positive integer, got {a.flow_steps}")
    if a.max_length < 2:
        raise ValueError(f"--max-length: expected an integer >= 2, got {a.max_length}")
    ids, pieces = run.explain_pieces(a.text)
    if len(pieces) > a.max_length:
        raise ValueError(
            f"text: {len(pieces)} {run.pieces} is longer than "
            f"--max-length {a.max_length} (saliency by occlusion runs the model once per "
            "piece: the time grows with the square of the length); pass a shorter text, or "
            "raise --max-length"
        )
    found = insight.explain_lm(
        run.model,
        pieces,
        ids,
        out,
        unit=a.unit,
        signal=a.signal,
        layer=a.layer,
        kind=a.kind,
        flow_steps=a.flow_steps,
    )
    summary = found.summary()
    summary["saliency"]["target_piece"] = run.token_name(summary["saliency"]["target"])
    print(json.dumps(summary))


SHARED = {"explain": Handler(explain, reads=("out", "unit", "signal"))}
CHARLM_HANDLERS = SHARED | {
    "generate": Handler(generate_chars, reads=("prompt", "length", "top_k", "top_p", "unknown")),
    "evaluate": Handler(evaluate_chars),
}
WORDLM_HANDLERS = SHARED | {
    "generate": Handler(
        generate_words, reads=("prompt", "length", "top_k", "top_p", "beam", "nbest")
    ),
    "predict": Handler(predict_words, reads=("top_k",)),
    "evaluate": Handler(evaluate_words, reads=("split",)),
}
