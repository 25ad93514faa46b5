"""``elman`` commands for music: train on chorales or melodies (``elman train music``),
generate MIDI and evaluate a run (``elman generate|evaluate DIR``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from elman.files import output_file
from elman.tasks.music import task as music
from elman.tasks.music.run import PRIMER_STEPS, SPEC, MusicRun
from elman.tasks.options import (
    add_task_options,
    config_from,
    integer,
    refuse_existing,
    train_config,
)
from elman.tasks.spec import Handler
from elman.train.distributed import is_main

LENGTH = 64  # steps generated unless --length says otherwise


def default_cache(step: float) -> Path:
    """Where parsed chorales are kept between runs (``$XDG_CACHE_HOME/elman``)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "elman" / f"chorales-step{step:g}.safetensors"


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    """``elman train music`` (music adds no command of its own to ``sub``)."""
    m = train.add_parser(
        "music",
        help="polyphonic (Bach chorales) or melody model",
        description="Train on music21's Bach chorales as piano rolls (--chorales) or on "
        "folk melodies as note tokens (--melodies). Needs elman[music].",
    )
    source = m.add_mutually_exclusive_group(required=True)
    source.add_argument("--chorales", action="store_true", help="the 371 Bach chorales")
    source.add_argument("--melodies", action="store_true", help="folk tunes, one token per note")
    m.add_argument(
        "--collection", default="essenFolksong", help="melodies: essenFolksong or oneills1850"
    )
    m.add_argument(
        "--match",
        default=None,
        help="melodies: only files whose name contains this (all 31 Essen files take about "
        "ten minutes to parse; altdeu10 holds 313 tunes)",
    )
    m.add_argument("--limit", type=integer, default=None, help="use only the first N pieces")
    m.add_argument(
        "--cache", default=None, help="chorales: parsed rolls file (default: ~/.cache/elman)"
    )
    m.add_argument("--seed-split", type=integer, default=0, help="seed of the split by piece")
    add_task_options(m, SPEC)
    m.set_defaults(train=train_music)


def train_music(a: argparse.Namespace) -> dict:
    """`elman train music`: the metrics of the run it trains into --out."""
    out = refuse_existing(a.out, a.overwrite)
    kind = "chorales" if a.chorales else "melody"
    if a.limit is not None and a.limit < 3:
        raise ValueError(f"--limit: a split needs at least 3 pieces, got {a.limit}")
    source: dict = {"kind": kind, "seed": a.seed_split, "limit": a.limit}
    if kind == "chorales":
        cache = output_file(a.cache, "--cache") if a.cache else default_cache(a.step)
        source["cache"] = str(cache)
    else:
        source |= {"collection": a.collection, "match": a.match}
    config = config_from(a, music.MusicConfig, kind=kind)
    return music.train(source, config, train_config(a), out, epochs=a.epochs)


def generate(a: argparse.Namespace, run: MusicRun) -> None:
    """Sample from a primer and write MIDI (``--midi``, default DIR/sample.mid)."""
    length = generation_length(a.length)
    path = output_file(a.midi, "--midi") if a.midi else run.path / "sample.mid"
    steps = PRIMER_STEPS if a.primer_steps is None else a.primer_steps
    primer = run.primer(a.primer_piece or 0, steps, a.primer_midi)
    piece = run.generate(primer, length, a.temperature, a.seed)
    run.write_midi(piece, path)
    if is_main():
        sys.stdout.write(
            f"{path}: {len(primer)} primer + {len(piece) - len(primer)} generated steps\n"
        )


def generation_length(length: int | None) -> int:
    """``--length``, or 64 steps when it is not given."""
    if length is None:
        return LENGTH
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"--length: expected a positive number of steps, got {length!r}")
    return length


def evaluate(a: argparse.Namespace, run: MusicRun) -> None:
    """NLL per step (per note) on the run's held-out split (``--split``, default test)."""
    if a.data is not None:
        raise ValueError(
            f"DATA: a music model is scored on its run's held-out pieces (--split valid|test), "
            f"not on a file; got {a.data!r}"
        )
    print(json.dumps(run.evaluate(split=a.split or "test")))


HANDLERS = {
    "generate": Handler(
        generate, reads=("length", "midi", "primer_steps", "primer_piece", "primer_midi")
    ),
    "evaluate": Handler(evaluate, reads=("split",)),
}
