"""Where classification data come from, recorded in the checkpoint so a run can resume.

A source is a JSON dict:

    {"kind": "sentiment", "path": DIR, "folds": 10, "fold": 0}   UCI sentences; the fold is test
    {"kind": "table", "train": CSV, "valid": CSV|None, "test": CSV|None,
     "text_column": "text", "label_column": "label", "max_chars": 100000}
    {"kind": "ts", "train": TS, "test": TS|None}                   UCR/UEA .ts files
    {"kind": "ucr", "name": "GunPoint"}                            sktime's bundled copy

plus ``valid_fraction`` (share of the training examples held out, stratified, for validation
when no validation file is given; 0 validates on the training data itself), ``valid_fold``
(which of the ``1/valid_fraction`` folds is held out: cross-validation runs each) and ``seed``.
"""

from __future__ import annotations

from pathlib import Path

from elman.data.labelled import (
    MAX_CHARS,
    Examples,
    read_sentiment,
    read_table,
    stratified_folds,
    stratified_holdout,
)
from elman.data.ucr import read_ts, sktime_path

SOURCE_KINDS = ("sentiment", "table", "ts", "ucr")


def load_source(source: dict) -> tuple[Examples, Examples, Examples | None]:
    """(train, validation, test or None) examples of ``source``."""
    kind = source.get("kind")
    test: Examples | None = None
    valid: Examples | None = None
    if kind == "sentiment":
        data = read_sentiment(source["path"])
        folds = stratified_folds(data.labels, source.get("folds", 10), source.get("seed", 0))
        held = set(folds[source.get("fold", 0)])
        train = data.subset([i for i in range(len(data)) if i not in held])
        test = data.subset(sorted(held))
    elif kind == "table":
        columns = (source.get("text_column", "text"), source.get("label_column", "label"))
        limit = source.get("max_chars", MAX_CHARS)
        train = read_table(source["train"], *columns, limit)
        valid = read_table(source["valid"], *columns, limit) if source.get("valid") else None
        test = read_table(source["test"], *columns, limit) if source.get("test") else None
    elif kind in ("ts", "ucr"):
        name = source.get("name")
        train_path = source["train"] if kind == "ts" else sktime_path(name, "train")
        test_path = source.get("test") if kind == "ts" else sktime_path(name, "test")
        train = read_ts(train_path).examples()
        test = read_ts(test_path).examples() if test_path else None
    else:
        raise ValueError(f"data source kind must be one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    fraction, fold = source.get("valid_fraction", 0.1), source.get("valid_fold", 0)
    if valid is None:
        train, valid = _hold_out(train, fraction, source.get("seed", 0), fold)
    elif fold:
        raise ValueError(f"valid_fold {fold}: a validation file is given, nothing is held out")
    return train, valid, test


def _hold_out(train: Examples, fraction: float, seed: int, fold: int) -> tuple[Examples, Examples]:
    if fraction == 0:
        if fold:
            raise ValueError(f"valid_fold {fold} needs valid_fraction > 0 (it is 0)")
        return train, train
    kept, held = stratified_holdout(train.labels, fraction, seed, fold)
    return train.subset(kept), train.subset(held)


def describe_path(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).resolve())
