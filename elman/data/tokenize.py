"""Tokenizers and their vocabularies: characters, words, and subword BPE (``tokenizers``).

One class, ``Tokenizer``, covers the three kinds so a task can store any of them in its
checkpoint (``to_json``) and rebuild it (``from_json``). Every kind reserves the same first ids:

    0 <pad>   padding; never a target, never counted
    1 <unk>   a token the vocabulary lacks (words below ``min_freq``, unseen characters)
    2 <eos>   end of a sentence or line (language models predict it)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
SPECIALS = (PAD, UNK, EOS)
PAD_ID, UNK_ID, EOS_ID = 0, 1, 2
KINDS = ("char", "word", "whitespace", "bpe")
# words (with inner hyphens/apostrophes), numbers, or one punctuation mark
WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")


def _bpe_backend():
    try:
        import tokenizers
    except ImportError as e:
        raise ImportError(
            "BPE tokenization needs the `tokenizers` package: pip install 'elman[text]'"
        ) from e
    return tokenizers


@dataclass(frozen=True)
class Tokenizer:
    """Text -> ids and back.

    kind: "char" (every character), "word" (words and punctuation marks split by a regular
        expression), "whitespace" (pre-tokenized text: split on spaces) or "bpe".
    tokens: the vocabulary, ids are positions; it starts with ``SPECIALS``.
    lower: lower-case text before splitting.
    bpe: the trained ``tokenizers`` model as JSON (kind "bpe" only).
    """

    kind: str
    tokens: tuple[str, ...]
    lower: bool = False
    bpe: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"tokenizer kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if tuple(self.tokens[:3]) != SPECIALS:
            raise ValueError(f"tokens: expected the vocabulary to start with {SPECIALS}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("tokens: expected distinct tokens")
        if (self.kind == "bpe") != (self.bpe is not None):
            raise ValueError("bpe: expected the trained model exactly when kind is 'bpe'")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})
        if self.bpe is not None:
            backend = _bpe_backend().Tokenizer.from_str(self.bpe)
            object.__setattr__(self, "_backend", backend)

    # ---- building ----------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        kind: str = "word",
        min_freq: int = 1,
        max_size: int | None = None,
        lower: bool = False,
    ) -> Tokenizer:
        """A vocabulary from training ``texts``: for "char"/"word"/"whitespace" the tokens seen
        at least ``min_freq`` times, most frequent first, at most ``max_size`` in all (specials
        included); for "bpe" a byte-pair encoding with ``max_size`` tokens (default 8000)."""
        if kind not in KINDS:
            raise ValueError(f"tokenizer kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size <= len(SPECIALS)):
            raise ValueError(f"max_size must be an integer > {len(SPECIALS)}, got {max_size!r}")
        if kind == "bpe":
            return cls._fit_bpe(texts, max_size or 8000, min_freq, lower)
        probe = cls(kind, SPECIALS, lower)
        counts = Counter(t for text in texts for t in probe.split(text))
        ranked = sorted(
            (t for t, n in counts.items() if n >= min_freq and t not in SPECIALS),
            key=lambda t: (-counts[t], t),
        )
        if not ranked:
            raise ValueError("texts: no token occurs often enough to build a vocabulary")
        keep = ranked[: None if max_size is None else max_size - len(SPECIALS)]
        return cls(kind, (*SPECIALS, *keep), lower)

    @classmethod
    def _fit_bpe(cls, texts: Iterable[str], size: int, min_freq: int, lower: bool) -> Tokenizer:
        tk = _bpe_backend()
        backend = tk.Tokenizer(tk.models.BPE(unk_token=UNK))
        # Metaspace marks word starts with "▁", so decoding restores the spaces exactly
        backend.pre_tokenizer = tk.pre_tokenizers.Metaspace()
        backend.decoder = tk.decoders.Metaspace()
        if lower:
            backend.normalizer = tk.normalizers.Lowercase()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=size,
            min_frequency=min_freq,
            special_tokens=list(SPECIALS),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer)
        vocab = backend.get_vocab()
        tokens = tuple(sorted(vocab, key=vocab.__getitem__))
        return cls("bpe", tokens, lower, backend.to_str())

    # ---- using -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        """The tokens of ``text`` as strings (before the vocabulary maps them to ids)."""
        if self.kind == "bpe":
            return self._backend.encode(text).tokens  # type: ignore[attr-defined]
        if self.lower:
            text = text.lower()
        if self.kind == "char":
            return list(text)
        if self.kind == "word":
            return WORD.findall(text)
        if self.kind == "whitespace":
            return text.split()
        raise ValueError(f"unknown tokenizer kind {self.kind!r}")

    def encode(self, text: str, eos: bool = False) -> list[int]:
        """Ids of ``text`` (unknown tokens -> ``UNK_ID``), with ``EOS_ID`` appended if asked."""
        ids = self.ids(self.split(text))
        return [*ids, EOS_ID] if eos else ids

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of already split ``tokens`` (lower-cased first if this tokenizer lowers)."""
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        if self.lower and self.kind != "bpe":
            tokens = [t.lower() for t in tokens]
        return [index.get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; padding is dropped, words are joined by spaces."""
        if self.kind == "bpe":
            return self._backend.decode([int(i) for i in ids])  # type: ignore[attr-defined]
        words = [self.tokens[int(i)] for i in ids if int(i) != PAD_ID]
        return ("" if self.kind == "char" else " ").join(words)

    def unknown_rate(self, texts: Iterable[str]) -> float:
        """Share of the tokens of ``texts`` that map to ``<unk>``."""
        ids = [i for text in texts for i in self.encode(text)]
        return sum(i == UNK_ID for i in ids) / max(1, len(ids))

    # ---- storing -----------------------------------------------------------------------
    def to_json(self) -> dict:
        data = {"kind": self.kind, "lower": self.lower}
        return data | ({"bpe": self.bpe} if self.bpe else {"tokens": list(self.tokens)})

    @classmethod
    def from_json(cls, data: dict) -> Tokenizer:
        if not isinstance(data, dict) or data.get("kind") not in KINDS:
            raise ValueError(f"tokenizer: expected a dict with kind in {KINDS}, got {data!r:.80}")
        if data["kind"] == "bpe":
            vocab = _bpe_backend().Tokenizer.from_str(data["bpe"]).get_vocab()
            tokens = tuple(sorted(vocab, key=vocab.__getitem__))
            return cls("bpe", tokens, bool(data.get("lower")), data["bpe"])
        return cls(data["kind"], tuple(data["tokens"]), bool(data.get("lower")))
