"""Where a speech run's utterances come from (recorded in its checkpoint so it can resume), and
how they become feature frames and symbol ids.

A source is a JSON dict:

    {"kind": "corpus", "path": DIR}          a folder with train.tsv, valid.tsv, test.tsv
                                             (what ``elman.data.speech.corpus`` makes)
    {"kind": "manifests", "train": M, "valid": M|None, "test": M|None}
                                             M: anything ``read_manifest`` reads (a CSV/TSV
                                             table, a LibriSpeech folder, a Common Voice TSV)

plus ``limit`` (use the first N training utterances), ``valid_fraction`` (without a
validation manifest: that share of the training speakers, or of the utterances when the
manifest names no speakers, is held out) and ``seed``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from elman.data.speech.audio import read_audio
from elman.data.speech.features import FeatureConfig, features
from elman.data.speech.manifests import Utterance, read_manifest
from elman.tasks.asr.alphabet import Alphabet

SPLITS = ("train", "valid", "test")
KINDS = ("corpus", "manifests")


def manifest_paths(source: dict) -> dict[str, str | None]:
    """The manifest of each split that ``source`` names (None: not given)."""
    kind = source.get("kind")
    if kind == "corpus":
        folder = Path(source["path"])
        if not (folder / "train.tsv").is_file():
            raise ValueError(
                f"corpus {str(folder)!r} has no train.tsv; make one with `elman corpus "
                f"{folder}` or give manifests (--train, --valid, --test)"
            )
        return {
            s: str(folder / f"{s}.tsv") if (folder / f"{s}.tsv").is_file() else None for s in SPLITS
        }
    if kind == "manifests":
        return {s: source.get(s) for s in SPLITS}
    raise ValueError(f"speech data source kind must be one of {', '.join(KINDS)}, got {kind!r}")


def load_source(source: dict) -> tuple[list[Utterance], list[Utterance], list[Utterance] | None]:
    """(train, validation, test or None) utterances of ``source``."""
    paths = manifest_paths(source)
    train = read_manifest(paths["train"])
    if source.get("limit") is not None:
        train = train[: source["limit"]]
    valid = read_manifest(paths["valid"]) if paths["valid"] else None
    test = read_manifest(paths["test"]) if paths["test"] else None
    if not valid:
        train, valid = hold_out(train, source.get("valid_fraction", 0.05), source.get("seed", 0))
    if not train:
        raise ValueError(f"the training manifest {paths['train']!r} holds no utterance")
    return train, valid, test or None


def hold_out(
    utterances: Sequence[Utterance], fraction: float, seed: int
) -> tuple[list[Utterance], list[Utterance]]:
    """(kept, held out): whole speakers when every utterance names one (a validation voice is
    then never heard in training), else single utterances; about ``fraction`` of them."""
    if not 0 < fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {fraction!r}")
    rng = random.Random(seed)
    speakers = sorted({u.speaker for u in utterances if u.speaker})
    if len(speakers) > 1 and all(u.speaker for u in utterances):
        rng.shuffle(speakers)
        held = set(speakers[: max(1, round(fraction * len(speakers)))])
        return [u for u in utterances if u.speaker not in held], [
            u for u in utterances if u.speaker in held
        ]
    order = list(range(len(utterances)))
    rng.shuffle(order)
    held_index = set(order[: max(1, round(fraction * len(utterances)))])
    kept = [u for i, u in enumerate(utterances) if i not in held_index]
    return kept, [u for i, u in enumerate(utterances) if i in held_index]


@dataclass
class Encoded:
    """Utterances as the model reads them: unstacked raw feature frames (SpecAugment works on
    these, before stacking), symbol ids, and the normalised reference texts."""

    feats: list[Tensor]  # (frames, base_dim) each
    labels: list[Tensor]  # (symbols,) int64 each
    texts: list[str]
    seconds: list[float]

    def __len__(self) -> int:
        return len(self.feats)

    def subset(self, index: Sequence[int]) -> Encoded:
        return Encoded(
            *(
                [part[i] for i in index]
                for part in (self.feats, self.labels, self.texts, self.seconds)
            )
        )


def raw_config(config: FeatureConfig) -> FeatureConfig:
    """The config of the stored frames: unstacked (stacking comes after SpecAugment)."""
    return replace(config, stack=1)


def encode(
    utterances: Sequence[Utterance],
    config: FeatureConfig,
    alphabet: Alphabet,
    max_seconds: float | None,
    what: str,
) -> Encoded:
    """Read, featurise and encode ``utterances``; a transcript with characters outside the
    alphabet, or audio that cannot be read, is an error naming the file."""
    raw, out = raw_config(config), Encoded([], [], [], [])
    for u in utterances:
        samples = read_audio(u.audio, config.rate, max_seconds)
        out.feats.append(features(samples, raw))
        out.labels.append(
            torch.tensor(
                alphabet.encode(u.text, f"{what} transcript of {u.audio}"), dtype=torch.int64
            )
        )
        out.texts.append(alphabet.normalise(u.text))
        out.seconds.append(len(samples) / config.rate)
    return out


def trainable(data: Encoded, stack: int) -> list[int]:
    """The utterances CTC can align: at least as many (stacked) frames as the labels need
    (one per symbol, plus a blank between each repeated pair)."""
    keep = []
    for i, (f, y) in enumerate(zip(data.feats, data.labels, strict=True)):
        repeats = int((y[1:] == y[:-1]).sum()) if len(y) > 1 else 0
        if len(y) and f.shape[0] // stack >= len(y) + repeats:
            keep.append(i)
    return keep


__all__ = [
    "KINDS",
    "SPLITS",
    "Encoded",
    "encode",
    "hold_out",
    "load_source",
    "manifest_paths",
    "raw_config",
    "trainable",
]
