"""``elman`` commands for music: train on chorales or melodies, generate MIDI, evaluate."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from elman.cli.lm import check_generate_options, generation_length
from elman.cli.options import (
    add_dataclass_options,
    add_run_options,
    config_from,
    integer,
    refuse_existing,
    train_config,
)
from elman.files import output_file
from elman.tasks.music import sampling
from elman.tasks.music import task as music
from elman.train.distributed import is_main

HELP = {
    "cell": "recurrent cell",
    "hidden": "units per layer",
    "layers": "stacked recurrent layers",
    "dropout": "dropout between layers and before the output layer",
    "embedding": "melody: note-token embedding size",
    "batch_size": "pieces per batch",
    "step": "chorales: the grid in quarter notes (1 = quarter notes, as JSB; 0.5 = eighths)",
    "transpose": "chorales: c moves each chorale to C major / C minor; none keeps its key",
    "augment": "chorales: transpose each training piece by a random -k..k semitones",
    "keys": "chorales: used (the training pieces' pitch range) or piano (all 88 keys)",
}
TRAIN = {"steps": 3000, "lr": 2e-3, "eval_every": 200, "clip_norm": 5.0}


def default_cache(step: float) -> Path:
    """Where parsed chorales are kept between runs (``$XDG_CACHE_HOME/elman``)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "elman" / f"chorales-step{step:g}.safetensors"


def add_parsers(train: argparse._SubParsersAction) -> None:
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
    add_dataclass_options(m, music.MusicConfig, HELP)
    add_run_options(m, TRAIN)


def train(a: argparse.Namespace) -> dict:
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


def generate(a: argparse.Namespace) -> None:
    """Sample from a primer and write MIDI (``--midi``, default DIR/sample.mid)."""
    check_generate_options(a, "music")
    length = generation_length(a.length, "music")
    path = output_file(a.midi, "--midi") if a.midi else Path(a.dir) / "sample.mid"
    model, encoding, meta = music.load(a.dir, a.checkpoint)
    steps = 8 if a.primer_steps is None else a.primer_steps
    primer = sampling.primer_from(meta, a.primer_piece or 0, steps, a.primer_midi)
    piece = sampling.generate(model, encoding, primer, length, a.temperature, a.seed)
    step = meta["task_config"]["model"]["step"]
    sampling.write_midi(piece, encoding, step, path)
    if is_main():
        sys.stdout.write(
            f"{path}: {len(primer)} primer + {len(piece) - len(primer)} generated steps\n"
        )
