"""A lexicon for the CTC beam search: the words it may spell. A spelling that leaves the
lexicon pays a penalty once, so a misheard "greatea" loses to "greater" unless the acoustics
insist, and a word the lexicon lacks (a name) is still possible at a price."""

from __future__ import annotations

import bisect
import re
from pathlib import Path

VARIANT = re.compile(r"\(\d+\)$")  # CMUdict's marker of a second pronunciation: "read(2)"


class Lexicon:
    """Words in sorted order: ``has`` a word, ``begins`` (some word starts with a prefix)."""

    def __init__(self, words: set[str], path: str = "") -> None:
        if not words:
            raise ValueError(f"lexicon: expected at least one word, {path or 'given'} has none")
        self.words, self.path = frozenset(words), path
        self.sorted = sorted(words)
        self._begins: dict[str, bool] = {}

    def __len__(self) -> int:
        return len(self.words)

    def has(self, word: str) -> bool:
        return word in self.words

    def begins(self, prefix: str) -> bool:
        """True when some word starts with ``prefix``: the first word >= it does, if any."""
        found = self._begins.get(prefix)
        if found is None:
            i = bisect.bisect_left(self.sorted, prefix)
            found = i < len(self.sorted) and self.sorted[i].startswith(prefix)
            self._begins[prefix] = found
        return found

    @classmethod
    def read(cls, path: str | Path) -> Lexicon:
        """One word per line, its first field, lower-cased (a pronouncing dictionary such as
        CMUdict reads as is; "word(2)" variants fold into "word"); blank lines and ``;;;`` or
        ``#`` comments are skipped. A word with characters the recogniser cannot write is
        never spelled, so it does no harm."""
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"lexicon: {path} is not a file (expected one word per line)")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"lexicon: cannot read {path} as UTF-8 text: {e}") from None
        words = set()
        for line in text.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith((";;;", "#")):
                continue
            if word := VARIANT.sub("", fields[0].lower()):
                words.add(word)
        return cls(words, str(path))


class LexiconScorer:
    """The lexicon as a CTC ``Scorer``: 0 while the word being spelled begins some lexicon
    word and when it ends as one; -1 once, at the first character that leaves the lexicon or
    at the space (or end) after a prefix that is no word. Its weight is the penalty. States
    are (the word being spelled, whether it already paid)."""

    def __init__(self, lexicon: Lexicon, symbols: str) -> None:
        self.lexicon, self.symbols = lexicon, symbols

    def initial(self) -> tuple[str, bool]:
        return "", False

    def score(self, state: tuple[str, bool], symbol: int) -> tuple[float, tuple[str, bool]]:
        spelled, paid = state
        c = self.symbols[symbol - 1]
        if c == " ":
            return self.final(state), ("", False)
        spelled += c
        if paid or self.lexicon.begins(spelled):
            return 0.0, (spelled, paid)
        return -1.0, (spelled, True)

    def final(self, state: tuple[str, bool]) -> float:
        spelled, paid = state
        return -1.0 if spelled and not paid and not self.lexicon.has(spelled) else 0.0


__all__ = ["Lexicon", "LexiconScorer"]
