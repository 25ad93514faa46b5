"""Labelled examples for classification: the UCI sentiment sentences, any CSV/TSV with a text
and a label column, and numeric series (see ``elman.data.ucr``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

SENTIMENT_SOURCES = ("amazon", "imdb", "yelp")
KINDS = ("text", "series")
MAX_CHARS = 100_000  # per input text: bounds memory and time (``--max-chars`` raises it)


@dataclass(frozen=True)
class Examples:
    """Labelled examples: ``inputs`` are texts (kind "text") or numeric series, each (T, C) or
    (T,) (kind "series"); ``labels`` are strings; ``groups`` optionally names each example's
    source (e.g. the site a review came from)."""

    kind: str
    inputs: Sequence
    labels: Sequence[str]
    groups: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if len(self.inputs) != len(self.labels):
            raise ValueError(
                f"inputs and labels differ in length: {len(self.inputs)} vs {len(self.labels)}"
            )
        if self.groups is not None and len(self.groups) != len(self.inputs):
            raise ValueError("groups: expected one entry per example")
        if not self.inputs:
            raise ValueError("examples: expected at least one example")

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, index: Sequence[int]) -> Examples:
        groups = None if self.groups is None else [self.groups[i] for i in index]
        return Examples(
            self.kind, [self.inputs[i] for i in index], [self.labels[i] for i in index], groups
        )


def read_sentiment(folder: str | Path) -> Examples:
    """UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015): 1,000 sentences each from
    Amazon, IMDb and Yelp, labelled "0" (negative) or "1" (positive). Read from the JSON copies
    (``amazon.json``, ``imdb.json``, ``yelp.json``: lists of ``{"text", "class"}``); entries
    with no class (each file ends with an empty one) are dropped."""
    root = Path(folder)
    texts, labels, groups = [], [], []
    for source in SENTIMENT_SOURCES:
        path = root / f"{source}.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} is missing; expected the UCI sentiment sentences as "
                f"{', '.join(s + '.json' for s in SENTIMENT_SOURCES)} (../shared/data/sentiment)"
            )
        for i, item in enumerate(json.loads(path.read_text("utf-8"))):
            if not isinstance(item, dict) or "text" not in item:
                raise ValueError(f"{path.name} entry {i}: expected {{'text', 'class'}}")
            if item.get("class") is None:
                continue
            texts.append(" ".join(str(item["text"]).split()))
            labels.append(str(item["class"]))
            groups.append(source)
    return Examples("text", texts, labels, groups)


def read_table(
    path: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    max_chars: int = MAX_CHARS,
) -> Examples:
    """Rows of a CSV (or TSV, by extension ``.tsv``) file with a header; without
    ``label_column`` the labels are empty strings (texts to predict). A field longer than
    ``max_chars`` characters is an error naming its line (option ``--max-chars``)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"table {str(p)!r} does not exist")
    check_max_chars(max_chars)
    previous = csv.field_size_limit(max_chars)  # csv's own bound, restored below
    try:
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t" if p.suffix == ".tsv" else ",")
            try:
                columns = reader.fieldnames or []
                for name in (text_column, label_column):
                    if name is not None and name not in columns:
                        raise ValueError(f"{p.name}: no column {name!r}; its columns are {columns}")
                rows = list(reader)
            except csv.Error as e:
                raise ValueError(_csv_problem(p, reader.line_num, max_chars, e)) from None
    finally:
        csv.field_size_limit(previous)
    texts, labels = [], []
    for i, row in enumerate(rows, 2):
        text = (row[text_column] or "").strip()
        if not text:
            raise ValueError(f"{p.name} line {i}: the {text_column!r} column is empty")
        texts.append(text)
        labels.append((row[label_column] or "").strip() if label_column else "")
    return Examples("text", texts, labels)


def check_max_chars(max_chars: int) -> None:
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"--max-chars must be an integer >= 1, got {max_chars!r}")


def too_long(where: str, length: int | None, max_chars: int) -> str:
    """The error for an input past the ``--max-chars`` bound (``length``: None if unknown)."""
    size = "a field longer than" if length is None else f"{length} characters, more than"
    return f"{where}: {size} --max-chars {max_chars}; raise --max-chars to read it"


def _csv_problem(p: Path, line: int, max_chars: int, e: csv.Error) -> str:
    if "field larger than field limit" in str(e):
        return too_long(f"{p.name} line {line + 1}", None, max_chars)  # line: before this one
    return f"{p.name} line {line + 1}: not valid CSV ({e})"


def stratified_folds(labels: Sequence[str], folds: int, seed: int = 0) -> list[list[int]]:
    """``folds`` disjoint index lists covering every example, each class spread evenly (a
    seeded shuffle within each class, then dealt round-robin)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if folds > len(labels):
        raise ValueError(f"folds={folds} exceeds the {len(labels)} examples")
    g = torch.Generator().manual_seed(seed)
    out: list[list[int]] = [[] for _ in range(folds)]
    dealt = 0
    for label in sorted(set(labels)):
        members = [i for i, x in enumerate(labels) if x == label]
        for j in torch.randperm(len(members), generator=g).tolist():
            out[dealt % folds].append(members[j])
            dealt += 1
    return [sorted(f) for f in out]


def holdout_folds(fraction: float) -> int:
    """How many folds a held-out ``fraction`` cuts the examples into (each fold is one
    possible validation split)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    return max(2, round(1 / fraction))


def stratified_holdout(
    labels: Sequence[str], fraction: float, seed: int = 0, fold: int = 0
) -> tuple[list[int], list[int]]:
    """(kept, held out) indices, about ``fraction`` of each class held out: fold ``fold`` of
    ``holdout_folds(fraction)`` (so every example is held out by exactly one fold)."""
    count = holdout_folds(fraction)
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < count:
        raise ValueError(
            f"valid_fold must be an integer in [0, {count - 1}] (a held-out fraction of "
            f"{fraction:g} cuts {count} folds), got {fold!r}"
        )
    folds = stratified_folds(labels, count, seed)
    held = set(folds[fold])
    return [i for i in range(len(labels)) if i not in held], sorted(held)
