"""Character vocabularies: built from training text, stored with the model, strict by default."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

UNKNOWN_POLICIES = ("error", "skip")


def _describe(chars: Iterable[str]) -> str:
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in sorted(set(chars))[:10])


@dataclass(frozen=True)
class CharVocab:
    """The distinct characters of a text, in code-point order; ids are positions."""

    chars: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.chars:
            raise ValueError("chars: a vocabulary needs at least one character")
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("chars: expected distinct single characters")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """Every distinct character of ``text``."""
        return cls(tuple(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str, unknown: str = "error") -> Tensor:
        """Ids (int64) of ``text``. ``unknown``: "error" raises on characters the vocabulary
        lacks, naming them; "skip" drops them."""
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(
                f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, got {unknown!r}"
            )
        missing = [c for c in set(text) if c not in index]
        if missing and unknown == "error":
            raise ValueError(
                f"text has {len(missing)} character(s) the vocabulary lacks: "
                f"{_describe(missing)}; remove them or skip unknown characters"
            )
        return torch.tensor([index[c] for c in text if c in index], dtype=torch.int64)

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """The text of ``ids``."""
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return "".join(self.chars[i] for i in values)

    def to_json(self) -> dict:
        return {"kind": "char", "chars": "".join(self.chars)}

    @classmethod
    def from_json(cls, data: dict) -> CharVocab:
        if data.get("kind") != "char" or not isinstance(data.get("chars"), str):
            raise ValueError(
                f"vocabulary: expected {{'kind': 'char', 'chars': str}}, got keys {sorted(data)}"
            )
        return cls(tuple(data["chars"]))
