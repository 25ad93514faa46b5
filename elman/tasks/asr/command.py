"""``elman`` commands for speech: ``train asr``, ``transcribe`` and ``speech-corpus`` (this
task's own), and its answers to the shared ``evaluate`` and ``explain``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from elman.files import output_file
from elman.tasks.asr import task as asr
from elman.tasks.asr.decoding import Decoding
from elman.tasks.asr.run import SPEC, AsrRun
from elman.tasks.options import (
    add_init_option,
    add_task_options,
    config_from,
    integer,
    number,
    refuse_existing,
    train_config,
)
from elman.tasks.spec import Handler
from elman.tasks.textio import write_rows


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    t = train.add_parser(
        "asr",
        help=SPEC.summary,
        description="Train a CTC speech recogniser on a corpus folder (--corpus, what `elman "
        "speech-corpus` makes) or manifests (--train, --valid, --test: CSV/TSV of path and "
        "transcript, a LibriSpeech folder or a Common Voice TSV). Needs elman[speech].",
    )
    src = t.add_argument_group("data (one source)")
    src.add_argument("--corpus", help="folder with train.tsv, valid.tsv, test.tsv")
    src.add_argument("--train", dest="train_manifest", help="training manifest")
    src.add_argument("--valid", help="validation manifest (default: speakers held out)")
    src.add_argument("--test", help="test manifest, scored by `elman evaluate`")
    src.add_argument("--limit", type=integer, default=None, help="first N training utterances")
    src.add_argument(
        "--valid-fraction",
        type=number,
        default=0.05,
        help="without --valid: share of the training speakers held out (default: 0.05)",
    )
    add_task_options(t, SPEC)
    add_init_option(
        t,
        derive_shape,
        "start from a trained asr run: every weight and its feature scaling, trained on "
        "(fine-tuned to) this data; its model fields become the defaults",
        single=True,
        metavar="ASR_RUN",
    )
    t.set_defaults(train=train_asr)

    tr = sub.add_parser("transcribe", help="transcribe audio files with a trained asr model")
    tr.add_argument("dir", help="model directory")
    tr.add_argument("audio", nargs="+", help="WAV, FLAC or OGG files")
    tr.add_argument("--timings", action="store_true", help="each word's start and end (s)")
    add_decoding_options(tr)
    tr.add_argument(
        "--format",
        choices=("jsonl", "csv", "text"),
        default="jsonl",
        help="one JSON line per file, CSV rows, or the transcripts alone (default: jsonl)",
    )
    tr.add_argument(
        "--checkpoint", choices=("best", "last"), default="best", help="(default: best)"
    )
    tr.set_defaults(handler=transcribe, run_type=AsrRun)

    c = sub.add_parser(
        "speech-corpus",
        help="synthesise a spoken corpus offline with eSpeak NG (test voices unheard in training)",
    )
    c.add_argument("out", help="folder to write (wav files, {train,valid,test}.tsv, corpus.json)")
    c.add_argument("--brown", help="Brown corpus folder: real sentences beside the generated ones")
    c.add_argument("--overwrite", action="store_true", help="replace a corpus already there")
    from elman.data.speech.corpus import CorpusConfig
    from elman.tasks.options import add_dataclass_options

    add_dataclass_options(c, CorpusConfig)
    c.set_defaults(task_command=make_corpus)


def add_decoding_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--beam, --lm, --lm-weight, --word-bonus, --word-lm, --word-lm-weight, --lexicon,
    --lexicon-penalty; None when not given (``Decoding.of``)."""
    p.add_argument("--beam", type=integer, help=f"{prefix}beam width (default: 1, greedy)")
    p.add_argument(
        "--lm", help=f"{prefix}a charlm run fused into the beam search (a beam of 16 unless --beam)"
    )
    p.add_argument("--lm-weight", type=number, help=f"{prefix}the LM's weight α (default: 0.5)")
    p.add_argument("--word-bonus", type=number, help=f"{prefix}bonus β per symbol (default: 1.0)")
    p.add_argument(
        "--word-lm",
        help=f"{prefix}a wordlm run (whitespace tokens) fused into the beam search: each word "
        "scored when it ends; with --lm or alone",
    )
    p.add_argument(
        "--word-lm-weight", type=number, help=f"{prefix}the word LM's weight γ (default: 0.5)"
    )
    lexicon = "a file of words, one per line (first field: a CMUdict file reads as is)"
    p.add_argument("--lexicon", help=f"{prefix}{lexicon}; a penalty per word outside it")
    p.add_argument("--lexicon-penalty", type=number, help=f"{prefix}λ per non-word (default: 5.0)")


def decoding_of(a: argparse.Namespace) -> Decoding:
    return Decoding.of(*(getattr(a, k) for k in DECODING))


def _source(a: argparse.Namespace) -> dict:
    given = [n for n in ("corpus", "train_manifest") if getattr(a, n)]
    if len(given) != 1:
        raise ValueError("give exactly one data source: --corpus DIR or --train MANIFEST")
    common = {"limit": a.limit, "valid_fraction": a.valid_fraction, "seed": a.seed}
    if a.corpus:
        if a.valid or a.test:
            raise ValueError("--valid and --test go with --train; a --corpus has its own splits")
        return {"kind": "corpus", "path": str(Path(a.corpus).resolve())} | common
    paths = {
        k: str(Path(v).resolve()) if v else None
        for k, v in (("train", a.train_manifest), ("valid", a.valid), ("test", a.test))
    }
    return {"kind": "manifests", **paths} | common


def train_asr(a: argparse.Namespace) -> dict:
    """`elman train asr`: the metrics of the run it trains into --out."""
    out = refuse_existing(a.out, a.overwrite)
    config = config_from(a, asr.AsrConfig)
    source = _source(a)
    return asr.train(source, config, train_config(a), out, epochs=a.epochs, init_from=a.init_from)


def derive_shape(a: argparse.Namespace) -> dict:
    """The model fields ``--init-from`` implies: the source run's (none without it)."""
    from elman.tasks.finetune import shape_of, source_run

    return shape_of(source_run(a.init_from, asr.NAME).config, asr.SHAPE) if a.init_from else {}


def transcribe(a: argparse.Namespace, run: AsrRun) -> None:
    """`elman transcribe`: one row per audio file (JSON lines, CSV, or the text alone)."""
    rows = [
        {"audio": path} | row
        for path, row in zip(
            a.audio, run.transcribe(a.audio, decoding_of(a), a.timings), strict=True
        )
    ]
    if a.format == "text":
        print("\n".join(row["text"] for row in rows))
    else:
        write_rows(rows, a.format)


def evaluate(a: argparse.Namespace, run: AsrRun) -> None:
    """WER and CER on DATA (a manifest) or the run's held-out split."""
    print(json.dumps(run.evaluate(a.data, split=a.split or "test", decoding=decoding_of(a))))


def explain(a: argparse.Namespace, run: AsrRun) -> None:
    """The posteriorgram of one audio file as a PNG (``--png``; by default
    DIR/posteriorgram-NAME.png)."""
    from elman.viz.posteriorgram import plot_posteriorgram

    png = (
        output_file(a.png, "--png")
        if a.png
        else run.path / f"posteriorgram-{Path(a.text).stem}.png"
    )
    log_probs = run.posteriors(a.text)
    text, words = run.decode(log_probs), run.word_timings(log_probs)
    step = run.seconds_per_frame
    plot_posteriorgram(
        log_probs.exp().tolist(),
        ["", *run.config.symbols],
        step,
        png,
        words,
        f"{Path(a.text).name}: {text}",
    )
    print(json.dumps({"audio": a.text, "text": text, "words": words, "png": str(png)}))


def make_corpus(a: argparse.Namespace) -> None:
    """`elman speech-corpus OUT`: write the corpus and print its summary."""
    from dataclasses import fields

    from elman.data.speech.corpus import CorpusConfig, make_corpus

    values = {f.name: getattr(a, f.name) for f in fields(CorpusConfig) if hasattr(a, f.name)}
    config = CorpusConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    summary = make_corpus(a.out, config, a.brown, a.overwrite)
    splits = {
        name: {
            "utterances": part["utterances"],
            "hours": part["hours"],
            "voices": len(part["voices"]),
        }
        for name, part in summary["splits"].items()
    }
    print(
        json.dumps(
            {
                "out": str(a.out),
                "hours": summary["hours"],
                "splits": splits,
                "synth": summary["synth"],
            }
        )
    )


DECODING = ("beam", "lm", "lm_weight", "word_bonus", "word_lm", "word_lm_weight", "lexicon",
            "lexicon_penalty")  # fmt: skip
HANDLERS = {
    "evaluate": Handler(evaluate, reads=("split", *DECODING)),  # type: ignore[arg-type]
    "explain": Handler(explain, reads=("png",)),  # type: ignore[arg-type]
}

__all__ = ["HANDLERS", "add_parsers", "decoding_of", "train_asr", "transcribe"]
