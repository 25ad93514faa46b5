"""A tiny synthetic spoken corpus and tiny speech runs, shared by the speech tests (made once
per session: eSpeak NG takes a few seconds for the corpus)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("soundfile")
pytest.importorskip("espeakng_loader")
pytest.importorskip("jiwer")

from elman.cli import main
from elman.data.speech.corpus import CorpusConfig, make_corpus

SMALL = CorpusConfig(
    train=16, valid=4, test=4, test_voices=2, valid_voices=2, accents=("en-us", "en-gb"),
    variants=("m1", "m3", "f1", "f2", "klatt"), wpm=(170, 200), noise_prob=0.0,
    reverb_prob=0.0, seed=3,
)  # fmt: skip
TINY = ["--hidden", "16", "--layers", "1", "--n-mels", "20", "--batch-size", "4"]


def tiny_corpus(root: Path) -> Path:
    out = root / "corpus"
    make_corpus(out, SMALL)
    return out


def tiny_run(corpus: Path, out: Path, *extra: str, steps: int = 4) -> Path:
    """A barely trained asr run (``extra``: e.g. --no-bidirectional for one that streams)."""
    args = ["train", "asr", "--corpus", str(corpus), "--out", str(out), *TINY, "--steps",
            str(steps), "--eval-every", str(steps), "--no-progress", *extra]  # fmt: skip
    assert main(args) == 0
    return out
