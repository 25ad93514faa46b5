"""Tagging data: sentences of (word, tag) pairs from the Brown corpus or ``word<TAB>tag`` files,
the vocabularies, and sentences encoded for the tagger: word ids, character ids and tag ids,
and with contextual string embeddings each sentence's precomputed word features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from elman.data.batching import pad
from elman.data.brown import Sentence, read_brown
from elman.data.text import read_text
from elman.data.tokenize import Tokenizer
from elman.tasks.tag.model import IGNORE, TagBatch
from elman.tasks.tag.strings import ContextualStrings

UNSEEN_TAG = -1  # a held-out tag the training data never had: always a mistake
MAX_WORD = 20  # characters of a word the CNN reads (long numbers, URLs: the first 20)


def read_conll(path: str | Path) -> list[Sentence]:
    """Sentences of a ``word<TAB>tag`` file (blank lines between sentences)."""
    sentences, current = [], []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ValueError(
                f"{Path(path).name} line {number}: expected 'word<TAB>tag', got {line!r}"
            )
        current.append((parts[0].strip(), parts[1].strip()))
    if current:
        sentences.append(current)
    return sentences


def check_tags(sentences: Sequence[Sentence], tags: Sequence[str], path: str | Path) -> None:
    """Refuse a file to score none of whose tags the model knows: it is not ``word<TAB>tag``
    data for this model (plain sentences split on spaces, ``word/tag`` tokens), and scoring
    it would report accuracy 0 instead of the problem."""
    known = set(tags)
    if any(t in known for s in sentences for _, t in s):
        return
    number, line = next((i, x) for i, x in enumerate(read_text(path).splitlines(), 1) if x.strip())
    raise ValueError(
        f"{Path(path).name} line {number}: expected 'word<TAB>tag', got {line!r}; none of the "
        f"file's tags is among the model's {len(known)} tags {sorted(known)[:10]}"
    )


def load_source(source: dict) -> tuple[list[Sentence], list[Sentence], list[Sentence]]:
    """(train, valid, test) sentences of a data source (see the module docstring)."""
    if source.get("kind") == "brown":
        brown = read_brown(source["path"])
        parts = brown.split()
        return tuple(brown.sentences(parts[k]) for k in ("train", "valid", "test"))  # type: ignore[return-value]
    if source.get("kind") == "conll":
        test = read_conll(source["test"]) if source.get("test") else []
        return read_conll(source["train"]), read_conll(source["valid"]), test
    raise ValueError(
        f"tagging data source kind must be 'brown' or 'conll', got {source.get('kind')!r}"
    )


@dataclass(frozen=True)
class Vocabularies:
    """Words (lower-cased), characters (case kept) and tags."""

    words: Tokenizer
    chars: Tokenizer
    tags: tuple[str, ...]

    @classmethod
    def fit(cls, sentences: Sequence[Sentence], min_freq: int) -> Vocabularies:
        words = [" ".join(w for w, _ in s) for s in sentences]
        return cls(
            Tokenizer.fit(words, "whitespace", min_freq, lower=True),
            Tokenizer.fit(words, "char"),
            tuple(sorted({t for s in sentences for _, t in s})),
        )

    def to_json(self) -> dict:
        return {
            "words": self.words.to_json(),
            "chars": self.chars.to_json(),
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict) -> Vocabularies:
        return cls(
            Tokenizer.from_json(data["words"]),
            Tokenizer.from_json(data["chars"]),
            tuple(data["tags"]),
        )

    def encode(
        self,
        words: Sequence[str],
        tags: Sequence[str] | None = None,
        what: str = "input",
        unseen: str = "error",
    ):
        """(word ids (T,), char ids (T, MAX_WORD), tag ids (T,) or None) of one sentence.

        unseen: a tag training never had is an error ("error"), or gets id ``UNSEEN_TAG``
        ("wrong"), which no prediction matches: evaluation counts it as a mistake."""
        if not words:
            raise ValueError(f"{what}: an empty sentence; expected at least one word")
        w = torch.tensor(self.words.ids(list(words)), dtype=torch.int64)
        c = torch.zeros(len(words), MAX_WORD, dtype=torch.int64)
        for i, word in enumerate(words):
            ids = self.chars.ids(list(word[:MAX_WORD]))
            c[i, : len(ids)] = torch.tensor(ids)
        if tags is None:
            return w, c, None
        index = {t: i for i, t in enumerate(self.tags)}
        missing = sorted(set(tags) - set(index))
        if missing and unseen == "error":
            raise ValueError(f"{what}: tag(s) {missing[:5]} never occur in training")
        ids = [index.get(t, UNSEEN_TAG) for t in tags]
        return w, c, torch.tensor(ids, dtype=torch.int64)


# One sentence: word ids (T,), char ids (T, MAX_WORD), tag ids (T,) or None, and with
# contextual string embeddings its word features (T, H_f + H_b) as a fourth item.
Encoded = list[tuple[Tensor, ...]]


def encode_sentences(
    vocab: Vocabularies,
    sentences: Sequence[Sentence],
    what: str,
    unseen: str = "wrong",
    strings: ContextualStrings | None = None,
) -> Encoded:
    """Encoded tagged sentences; tags training never had count as mistakes (``unseen``); with
    ``strings``, each sentence's word features too."""
    data = [
        vocab.encode([w for w, _ in s], [t for _, t in s], f"{what} sentence {i}", unseen)
        for i, s in enumerate(sentences)
    ]
    if strings is None:
        return data
    return with_strings(data, [[w for w, _ in s] for s in sentences], strings)


def with_strings(
    data: Encoded, words: Sequence[Sequence[str]], strings: ContextualStrings | None
) -> Encoded:
    """``data`` with each sentence's contextual string features (``words``: its words) as a
    fourth item; unchanged without ``strings``."""
    if strings is None:
        return list(data)
    features = strings.features(words)
    return [(*d[:3], f) for d, f in zip(data, features, strict=True)]


def collate(data: Encoded, index: Sequence[int]) -> TagBatch:
    rows = [data[i] for i in index]
    words, lengths = pad([r[0] for r in rows])
    chars, _ = pad([r[1] for r in rows])
    tags = None if rows[0][2] is None else pad([r[2] for r in rows], IGNORE)[0]
    strings = pad([r[3] for r in rows])[0].float() if len(rows[0]) > 3 else None
    index = torch.as_tensor(index, dtype=torch.int64)
    return TagBatch(words, chars, lengths, tags, index, strings)


__all__ = [
    "MAX_WORD",
    "UNSEEN_TAG",
    "Encoded",
    "Vocabularies",
    "check_tags",
    "collate",
    "encode_sentences",
    "load_source",
    "read_conll",
    "with_strings",
]
