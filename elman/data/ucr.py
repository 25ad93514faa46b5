"""Time-series classification sets in the UCR/UEA ``.ts`` format (as sktime ships them).

A ``.ts`` file has ``#`` (or ARFF's ``%``) comments, ``@`` header lines (``@problemName``,
``@univariate``, ``@dimensions``, ``@equalLength``, ``@classLabel true a b c``, ...), then
``@data`` and one case per line: the dimensions separated by ":", each a comma-separated
series, the class label last. ``?`` marks a missing value (read as NaN). Series of one case
may differ in length (JapaneseVowels), and so may cases.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from elman.data.labelled import Examples, too_long

SKTIME_SETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "JapaneseVowels")


@dataclass(frozen=True)
class LabelledSeries:
    """Cases ``series`` (each (T_i, C) float32), their ``labels`` and the declared classes."""

    name: str
    series: list[Tensor]
    labels: list[str]
    classes: tuple[str, ...]

    @property
    def dimensions(self) -> int:
        return self.series[0].shape[1]

    def examples(self) -> Examples:
        """The cases as classification examples (kind "series")."""
        return Examples("series", self.series, self.labels)

    def targets(self, classes: tuple[str, ...] | None = None) -> Tensor:
        """Class ids (N,) int64 in the order of ``classes`` (default: this file's)."""
        order = {c: i for i, c in enumerate(classes or self.classes)}
        unseen = sorted(set(self.labels) - set(order))
        if unseen:
            raise ValueError(
                f"{self.name}: label(s) {unseen[:5]} are not among the classes {list(order)}"
            )
        return torch.tensor([order[c] for c in self.labels], dtype=torch.int64)


def _values(text: str, where: str) -> list[float]:
    out = []
    for v in text.split(","):
        v = v.strip()
        try:
            out.append(math.nan if v == "?" else float(v))
        except ValueError:
            raise ValueError(f"{where}: expected a number or '?', got {v!r}") from None
    return out


def _case(line: str, where: str, dims: int | None) -> tuple[Tensor, str]:
    *parts, label = line.split(":")
    if not parts:
        raise ValueError(f"{where}: expected 'values:...:label', got {line[:60]!r}")
    if dims is not None and len(parts) != dims:
        raise ValueError(f"{where}: expected {dims} dimension(s), got {len(parts)}")
    channels = [_values(p, f"{where}, dimension {d + 1}") for d, p in enumerate(parts)]
    length = max(len(c) for c in channels)
    # channels of one case may be shorter than its longest: pad them with NaN (missing)
    rows = [c + [math.nan] * (length - len(c)) for c in channels]
    return torch.tensor(rows, dtype=torch.float32).T.contiguous(), label.strip()


def read_ts(path: str | Path, max_chars: int | None = None) -> LabelledSeries:
    """Every case of the ``.ts`` file ``path``; a case line longer than ``max_chars``
    characters (if given) is an error naming it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f".ts file {str(p)!r} does not exist; UCR/UEA sets ship inside the `sktime` package "
            "(pip install 'elman[series]') or come from timeseriesclassification.com"
        )
    header: dict[str, str] = {}
    series, labels, in_data = [], [], False
    for number, raw in enumerate(p.read_text("utf-8", errors="strict").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", "%")):  # "%": ARFF's comments, as sktime's UnitTest
            continue
        where = f"{p.name} line {number}"
        if not in_data:
            key, _, value = line.partition(" ")
            if key.lower() == "@data":
                in_data = True
            elif key.startswith("@"):
                header[key[1:].lower()] = value.strip()
            else:
                raise ValueError(f"{where}: expected a @header line before @data, got {line!r:.40}")
            continue
        if max_chars is not None and len(line) > max_chars:
            raise ValueError(too_long(where, len(line), max_chars))
        if header.get("timestamps", "false").lower() == "true":
            raise ValueError(f"{p.name}: time-stamped .ts files are not supported")
        dims = int(header["dimensions"]) if "dimensions" in header else None
        x, label = _case(line, where, dims)
        series.append(x)
        labels.append(label)
    if not series:
        raise ValueError(f"{p.name}: no cases after @data")
    declared = header.get("classlabel", "").split()
    if not declared or declared[0].lower() != "true":
        raise ValueError(f"{p.name}: expected '@classLabel true <classes>' for classification")
    return LabelledSeries(header.get("problemname", p.stem), series, labels, tuple(declared[1:]))


def sktime_path(name: str, split: str) -> Path:
    """Where the installed ``sktime`` keeps ``name``'s ``split`` ("train" or "test") file
    (found without importing sktime)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the UCR/UEA data sets come from the `sktime` package, which is not installed: "
            "pip install 'elman[series]' (or pass the path of a .ts file)"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    path = root / name / f"{name}_{split.upper()}.ts"
    if not path.is_file():
        known = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
        raise FileNotFoundError(f"no {path.name} in sktime's data; it has {known}")
    return path
