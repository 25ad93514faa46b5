"""The Brown Corpus (Francis & Kucera 1964/1979): 500 files of tagged American English.

Format (as in NLTK's copy): files ``ca01`` .. ``cr09``, one sentence per line, tokens
``word/tag`` separated by spaces (a word may itself contain "/": the tag follows the last
one), plus ``cats.txt`` mapping each file to one of 15 genres. Tags are the 87-tag Brown set
with suffixes ``-tl`` (title), ``-hl`` (headline) and ``-nc`` (cited word), and compounds
joined by "+" (``it's/pps+bez``), "fw-" prefixes (foreign words) and "*" (negation).

``normalize_tag`` strips the three suffixes; compounds stay whole tags (``pps+bez`` is one
class), as do "fw-" and "*" tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FILE = re.compile(r"^c[a-r]\d\d$")
SUFFIX = re.compile(r"(?:-(?:tl|hl|nc))+$")
HOW_TO_GET = (
    "the Brown Corpus as 500 files ca01..cr09 (NLTK's `brown` corpus, or the copy in "
    "../shared/data/brown)"
)

Sentence = list[tuple[str, str]]
PARTS = ("train",) * 8 + ("valid", "test")


def normalize_tag(tag: str) -> str:
    """``nn-tl-hl`` -> ``nn``; compounds (``pps+bez``) are kept whole, each part stripped."""
    return "+".join(SUFFIX.sub("", part) for part in tag.split("+"))


@dataclass(frozen=True)
class Brown:
    """Sentences per file (each a list of (word, tag)), and each file's genre."""

    files: dict[str, list[Sentence]]
    genres: dict[str, str]

    def sentences(self, fileids: list[str] | None = None) -> list[Sentence]:
        """The sentences of ``fileids`` (None: every file; an empty list: none)."""
        files = sorted(self.files) if fileids is None else fileids
        return [s for f in files for s in self.files[f]]

    def split(self) -> dict[str, list[str]]:
        """A fixed split by file, stratified by genre: within each genre's sorted files, the
        9th of every ten goes to validation, the 10th to test, the rest train (80/10/10 of
        the 500 files: 414/45/41, since genres of fewer than ten files keep their tail in
        train). No randomness, so every run splits alike."""
        parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
        by_genre: dict[str, list[str]] = {}
        for f in sorted(self.files):
            by_genre.setdefault(self.genres.get(f, f[:2]), []).append(f)
        for files in by_genre.values():
            for i, f in enumerate(files):
                parts[PARTS[i % 10]].append(f)
        return {k: sorted(v) for k, v in parts.items()}


def parse_line(line: str, where: str) -> Sentence:
    """One sentence from ``word/tag word/tag ...``; ``where`` names the line in errors."""
    tokens = []
    for item in line.split():
        word, slash, tag = item.rpartition("/")
        if not slash or not word or not tag:
            raise ValueError(f"{where}: expected word/tag, got {item!r}")
        tokens.append((word, tag))
    return tokens


def read_brown(path: str | Path, normalize: bool = True) -> Brown:
    """Read the corpus folder ``path``; ``normalize`` applies ``normalize_tag`` to every tag."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"Brown corpus folder {str(root)!r} does not exist; {HOW_TO_GET}")
    names = sorted(p.name for p in root.iterdir() if FILE.match(p.name))
    if not names:
        raise FileNotFoundError(f"no Brown files (ca01 ..) in {str(root)!r}; {HOW_TO_GET}")
    files = {}
    for name in names:
        sentences = []
        for number, line in enumerate((root / name).read_text("utf-8").splitlines(), 1):
            if line.strip():
                sentence = parse_line(line, f"{name} line {number}")
                if normalize:
                    sentence = [(w, normalize_tag(t)) for w, t in sentence]
                sentences.append(sentence)
        files[name] = sentences
    return Brown(files, _genres(root / "cats.txt"))


def _genres(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split() for line in path.read_text("utf-8").splitlines() if line.strip())
    return {p[0]: p[1] for p in pairs if len(p) == 2}
