r"""Contextual string embeddings (Akbik, Blythe & Vollgraf 2018, "Contextual String Embeddings
for Sequence Labeling"): a forward and a backward character LM, pretrained and frozen, read a
sentence as one string; each word is represented by their top-layer states at its ends.

A sentence of words w_1..w_n is the string s = w_1 ␣ w_2 ␣ … ␣ w_n; word i occupies s[a_i, b_i)
(0-based, b_i exclusive). Each LM reads its own direction after a line break m = "\n":

    x^f = m s                                  the forward LM's input
    x^b = m reverse(s)                         the backward LM's input (s[j] at |m| + |s|-1-j)
    h^f_t = LM_f(x^f_0..x^f_t),  h^b_t = LM_b(x^b_0..x^b_t)        top layer, eval mode
    e_i = [h^f_{|m| + b_i - 1} ; h^b_{|m| + |s| - 1 - a_i}]       word i's embedding

so h^f is taken after the word's last character and h^b after (reading backwards) its first,
i.e. the backward state "before the word's first character" in reading order: the forward
half summarises the sentence up to the word, the backward half the word and all after it. The
spaces around a word are not read into its own states (the paper's definition; flair reads
the space after it too).

Why the line break: the LMs are pretrained on running text where a sentence starts a line (or
follows one), and a corpus read backwards has the line break before each reversed line too,
so m puts both in the state they have at a sentence start instead of the all-zero state they
only saw at document starts. An LM whose vocabulary lacks "\n" reads no prefix (|m| = 0).

Characters an LM's vocabulary lacks are mapped, never dropped, so every position above holds:
to the first character of their compatibility decomposition (NFKD: "é" -> "e", "ﬁ" -> "f"),
else to that in the other case ("É" -> "e" when only lower case is known), else to the
character's other case ("ß" -> "S"), else whitespace to " " and anything else to a fallback
the vocabulary has (the first of "?", "*", "#", "~", else its last character). The substitute
depends on the vocabulary alone, never on what was read before.

The LMs may differ in size, cell and vocabulary: the embedding is (H_f + H_b) wide.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import accumulate

import torch
from torch import Tensor, nn

from elman.data.batching import pad
from elman.data.vocab import CharVocab
from elman.tasks.lm.charlm import CharLM, model_from
from elman.train.device import device_of, move

FALLBACKS = ("?", "*", "#", "~")
START = "\n"
CACHE_DTYPE = torch.float16  # precomputed features: LSTM outputs lie in (-1, 1), half is ample
BATCH = 64  # sentences per LM pass when embedding many


@dataclass(frozen=True)
class StringBatch:
    """Sentences as the two LMs read them: character ids ``forward`` (B, S_f) and
    ``backward`` (B, S_b), right-padded; per word, ``forward_at`` (B, T) the index of its last
    character in ``forward`` and ``backward_at`` (B, T) of its first in ``backward`` (0 on
    padding); ``lengths`` (B,) words per sentence."""

    forward: Tensor
    backward: Tensor
    forward_at: Tensor
    backward_at: Tensor
    lengths: Tensor


class CharIds:
    """Ids of text in one character LM's vocabulary, every character mapped (see the module
    docstring): an unknown character's substitute depends on the vocabulary alone."""

    def __init__(self, vocab: CharVocab) -> None:
        self.index = {c: i for i, c in enumerate(vocab.chars)}
        self.start = START if START in self.index else ""
        fallback = next((c for c in FALLBACKS if c in self.index), vocab.chars[-1])
        self.fallback = self.index[fallback]
        self.space = self.index.get(" ", self.fallback)
        self.memo = dict(self.index)  # the known characters and the substitutes found so far

    def substitute(self, c: str) -> int:
        """The id an unknown character ``c`` is read as."""
        base = unicodedata.normalize("NFKD", c)[:1]
        for candidate in (base, base.swapcase()[:1], c.swapcase()[:1]):
            if candidate in self.index:
                return self.index[candidate]
        return self.space if c.isspace() else self.fallback

    def encode(self, text: str) -> list[int]:
        memo = self.memo
        for c in set(text) - memo.keys():
            memo[c] = self.substitute(c)
        return [memo[c] for c in text]


class ContextualStrings(nn.Module):
    """A frozen forward and backward character LM pair turning sentences into (B, T, H_f + H_b)
    word features. The LMs never train: their parameters do not require grad and they stay in
    eval mode (no dropout) whatever mode the model around them is put in. ``sources`` records
    where each LM came from (see ``elman.tasks.tag.lms``)."""

    def __init__(
        self,
        forward_lm: CharLM,
        backward_lm: CharLM,
        forward_vocab: CharVocab,
        backward_vocab: CharVocab,
        sources: tuple[dict, dict] = ({}, {}),
    ) -> None:
        super().__init__()
        self.forward_lm, self.backward_lm = forward_lm, backward_lm
        self.vocabs = (forward_vocab, backward_vocab)
        self.ids = (CharIds(forward_vocab), CharIds(backward_vocab))
        self.sources = sources
        self.size = forward_lm.config.hidden + backward_lm.config.hidden
        for p in self.parameters():
            p.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> ContextualStrings:
        """The LMs stay in eval mode: they are a fixed feature extractor."""
        super().train(mode)
        self.forward_lm.eval()
        self.backward_lm.eval()
        return self

    def encode(self, sentences: Sequence[Sequence[str]]) -> StringBatch:
        """The strings and word positions of ``sentences`` (lists of words)."""
        ids: tuple[list[Tensor], list[Tensor]] = ([], [])
        at: tuple[list[Tensor], list[Tensor]] = ([], [])
        for i, words in enumerate(sentences):
            check_words(words, i)
            s = " ".join(words)
            ends = list(accumulate(len(w) + 1 for w in words))  # b_i + 1: each word and a space
            first = [e - 1 - len(w) for e, w in zip(ends, words, strict=True)]  # a_i
            fwd, bwd = self.ids
            ids[0].append(torch.tensor(fwd.encode(fwd.start + s)))
            ids[1].append(torch.tensor(bwd.encode(bwd.start + s[::-1])))
            at[0].append(torch.tensor([len(fwd.start) + e - 2 for e in ends]))
            at[1].append(torch.tensor([len(bwd.start) + len(s) - 1 - a for a in first]))
        forward, _ = pad(ids[0])
        backward, _ = pad(ids[1])
        forward_at, lengths = pad(at[0])
        return StringBatch(forward, backward, forward_at, pad(at[1])[0], lengths)

    def forward(self, batch: StringBatch) -> Tensor:
        """Word features (B, T, H_f + H_b), zero on padding: one pass of each LM over the
        padded batch (right padding never reaches the states before it).

            e_i = [h^f[forward_at_i] ; h^b[backward_at_i]]
        """
        hf, _ = self.forward_lm.features(batch.forward)  # (B, S_f, H_f)
        hb, _ = self.backward_lm.features(batch.backward)  # (B, S_b, H_b)
        ef = hf.gather(1, batch.forward_at[..., None].expand(-1, -1, hf.shape[-1]))  # h^f[f_i]
        eb = hb.gather(1, batch.backward_at[..., None].expand(-1, -1, hb.shape[-1]))  # h^b[b_i]
        steps = torch.arange(batch.forward_at.shape[1], device=batch.lengths.device)
        mask = (steps[None, :] < batch.lengths[:, None]).to(ef.dtype)
        return torch.cat([ef, eb], dim=-1) * mask[..., None]  # (B, T, H_f + H_b)

    def embed(self, sentences: Sequence[Sequence[str]]) -> Tensor:
        """Word features (B, T, H_f + H_b) of ``sentences``, on the LMs' device."""
        return self(move(self.encode(sentences), device_of(self)))

    def features(self, sentences: Sequence[Sequence[str]], batch: int = BATCH) -> list[Tensor]:
        """Each sentence's word features (T_i, H_f + H_b), in ``CACHE_DTYPE`` on the CPU, from
        LM passes over batches of similar-length sentences (the tagger's cache)."""
        out: list[Tensor] = [torch.empty(0)] * len(sentences)
        order = sorted(range(len(sentences)), key=lambda i: sum(map(len, sentences[i])))
        with torch.no_grad():
            for start in range(0, len(order), batch):
                index = order[start : start + batch]
                e = self.embed([sentences[i] for i in index]).to("cpu", CACHE_DTYPE)
                for row, i in enumerate(index):
                    out[i] = e[row, : len(sentences[i])].clone()
        return out

    def describe(self) -> dict:
        """The header entry a tagger's checkpoint keeps: each LM's config, vocabulary and
        source (``from_header`` rebuilds the pair; the weights are the checkpoint's)."""
        lms = (self.forward_lm, self.backward_lm)
        return {
            side: {"model": asdict(lm.config), "vocab": vocab.to_json(), "source": source}
            for side, lm, vocab, source in zip(
                ("forward", "backward"), lms, self.vocabs, self.sources, strict=True
            )
        }

    @classmethod
    def from_header(cls, info: dict) -> ContextualStrings:
        """The pair (untrained weights) a checkpoint header's ``describe()`` entry names."""
        (f, fv), (b, bv) = (model_from(info[side]) for side in ("forward", "backward"))
        return cls(f, b, fv, bv, (info["forward"]["source"], info["backward"]["source"]))


def check_words(words: Sequence[str], i: int) -> None:
    """A sentence must have words, and every word a character (it has positions)."""
    if not words:
        raise ValueError(f"sentence {i}: an empty sentence; expected at least one word")
    for j, w in enumerate(words):
        if not isinstance(w, str) or not w:
            raise ValueError(
                f"sentence {i} word {j}: expected a non-empty string, got {w!r} (a contextual "
                "string embedding is read at a word's first and last characters)"
            )


__all__ = ["CACHE_DTYPE", "CharIds", "ContextualStrings", "StringBatch", "check_words"]
