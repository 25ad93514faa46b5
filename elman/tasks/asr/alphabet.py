"""The output symbols of a CTC model: index 0 is the blank, then the characters it writes.

Transcripts are lower-cased and their whitespace collapsed; any other character outside the
alphabet is an error that names it and the utterance, never silently dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass

BLANK = 0
ENGLISH = " 'abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Alphabet:
    """``symbols``: the characters, in index order after the blank (index 0)."""

    symbols: str = ENGLISH

    def __post_init__(self) -> None:
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"alphabet: expected distinct characters, got {self.symbols!r}")
        if " " not in self.symbols:
            raise ValueError("alphabet: expected a space among the characters (it separates words)")

    def __len__(self) -> int:
        return len(self.symbols) + 1  # + the blank

    @property
    def space(self) -> int:
        return self.symbols.index(" ") + 1

    def normalise(self, text: str) -> str:
        return re.sub(r"\s+", " ", text.lower()).strip()

    def encode(self, text: str, where: str = "transcript") -> list[int]:
        """Symbol ids of the normalised ``text``; ``where`` names it in the error."""
        text = self.normalise(text)
        unknown = sorted({c for c in text if c not in self.symbols})
        if unknown:
            raise ValueError(
                f"{where}: characters {''.join(unknown)!r} are outside the alphabet "
                f"{self.symbols!r} (in {text[:60]!r})"
            )
        return [self.symbols.index(c) + 1 for c in text]

    def decode(self, ids: list[int]) -> str:
        """The text of symbol ids (blanks skipped; no repeat collapsing: that is CTC's)."""
        return "".join(self.symbols[i - 1] for i in ids if i != BLANK)
