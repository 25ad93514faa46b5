"""Reading a command's inputs (text lines, CSV/TSV, .ts series: bounded, UTF-8, with errors
that name the line) and writing its result rows (JSON lines or flat CSV)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from elman.data.labelled import MAX_CHARS, Examples, check_max_chars, read_table, too_long
from elman.data.ucr import read_ts
from elman.tasks.options import integer


def add_max_chars(p: argparse._ActionsContainer, what: str) -> None:
    p.add_argument(
        "--max-chars",
        type=integer,
        default=MAX_CHARS,
        help=f"longest {what} in characters (longer ones are an error, not a slow or "
        "out-of-memory run)",
    )


def read_lines(path: str, stdin_lines: Iterable[str], max_chars: int, need: str) -> list[str]:
    """The lines of ``path`` (``-``: ``stdin_lines``), each non-empty and at most ``max_chars``
    characters (an error names the first that is not); ``need`` says what a line holds."""
    check_max_chars(max_chars)
    name = "stdin" if path == "-" else Path(_input_file(path)).name
    lines = []
    for k, line in enumerate(stdin_lines if path == "-" else _utf8_lines(path), 1):
        line = line.rstrip("\r\n")
        if len(line) > max_chars:
            raise ValueError(too_long(f"{name} line {k}", len(line), max_chars))
        lines.append(line)
    if not lines:
        raise ValueError(f"{name}: no input lines; expected at least one line with {need}")
    empty = [i + 1 for i, t in enumerate(lines) if not t.strip()]
    if empty:
        raise ValueError(f"input line(s) {empty[:5]} are empty; every line needs {need}")
    return lines


def _utf8_lines(path: str) -> Iterator[str]:
    """The lines of a file, one at a time; bytes that are not UTF-8 name their line."""
    with open(path, "rb") as f:
        for k, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                where = f"{Path(path).name} line {k}"
                raise ValueError(f"{where}: not UTF-8 text ({e.reason})") from None


def _input_file(path: str) -> str:
    if Path(path).is_dir():
        raise ValueError(f"input {path!r} is a directory; expected a file, or - for stdin")
    return path


def read_inputs(
    path: str | None, kind: str, text_column: str, stdin_lines, max_chars: int = MAX_CHARS
) -> Examples:
    """Inputs to predict: a .ts file, a CSV/TSV (``text_column``), or text lines."""
    if path and path.endswith(".ts"):
        return read_ts(_input_file(path), max_chars).examples()
    if path and path.endswith((".csv", ".tsv")):
        return read_table(_input_file(path), text_column, None, max_chars)
    texts = read_lines(path or "-", stdin_lines, max_chars, "text")
    if kind != "text":
        raise ValueError("this model reads numeric series: give a .ts file")
    return Examples("text", texts, [""] * len(texts))


def csv_row(row: dict) -> dict:
    """One flat CSV row of a ``predict`` result: class probabilities become ``p_<class>``
    columns, a tagged sentence its text and space-separated tags, a word LM's next words
    ``next_<i>`` and ``p_<i>`` columns."""
    flat = {k: v for k, v in row.items() if k not in ("probabilities", "words", "tags", "next")}
    if "probabilities" in row:
        flat |= {f"p_{c}": p for c, p in row["probabilities"].items()}
    if "words" in row:
        flat |= {"text": " ".join(row["words"]), "tags": " ".join(row["tags"])}
    for i, item in enumerate(row.get("next", []), 1):
        flat |= {f"next_{i}": item["word"], f"p_{i}": item["p"]}
    return flat


def write_rows(rows: list[dict], fmt: str, flat: Callable[[dict], dict] | None = None) -> None:
    """Rows as JSON lines, or as CSV: ``flat`` turns a row into flat columns (else nested
    values become JSON text); the header is every column of every row, in order of appearance."""
    if fmt == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    flat = flat or (lambda r: r)
    table = [
        {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in flat(r).items()}
        for r in rows
    ]
    writer = csv.DictWriter(sys.stdout, fieldnames=list(dict.fromkeys(k for r in table for k in r)))
    writer.writeheader()
    writer.writerows(table)
