"""How CTC posteriors become text: greedy (the best symbol per frame, repeats merged, blanks
dropped), or prefix beam search with shallow fusion of an Elman character language model,
a word language model, or both,

    score(l) = log p_CTC(l | x) + α · log p_char(l) + γ · log p_word(l) + β · |l| − λ · n(l)

(Hannun et al. 2014): α and γ the LMs' weights, β a bonus per symbol against the LMs' bias
to short transcripts, and λ a penalty per word of l outside a lexicon, n(l) of them (when
one is given). The word LM scores a word when the space after it (or the end) comes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from elman import ctc
from elman.data.tokenize import EOS_ID, UNK_ID
from elman.tasks.asr.alphabet import BLANK, Alphabet
from elman.tasks.asr.lexicon import Lexicon, LexiconScorer


class CharLMScorer:
    """An Elman character LM (``CharRun``) as a CTC ``Scorer``: log p(c | prefix) renormalised
    over the alphabet's characters (and a newline, the end of a sentence, when the LM knows
    it). States are prefixes; a prefix's LM state is computed once, when first extended."""

    def __init__(self, run: Any, symbols: str) -> None:
        index = {c: i for i, c in enumerate(run.names())}
        missing = sorted(set(symbols) - set(index))
        if missing:
            raise ValueError(
                f"lm: the language model {run.path} never saw {''.join(missing)!r}; train it "
                "on text written in the recogniser's alphabet (lower case, a-z, ' and space)"
            )
        self.model, self.ids = run.model, [index[c] for c in symbols]
        self.end = index.get("\n")
        self.targets = torch.tensor(self.ids + ([self.end] if self.end is not None else []))
        start = self.end if self.end is not None else index[" "]
        self.cache: dict[tuple[int, ...], tuple[list[float], Any]] = {(): self._step(None, start)}

    @torch.no_grad()
    def _step(self, state: Any, token: int) -> tuple[list[float], Any]:
        logits, new = self.model(torch.tensor([[token]]), state=state)
        return torch.log_softmax(logits[0, -1, self.targets], -1).tolist(), new

    def _entry(self, prefix: tuple[int, ...]) -> tuple[list[float], Any]:
        found = self.cache.get(prefix)
        if found is None:
            _, state = self._entry(prefix[:-1])
            found = self.cache[prefix] = self._step(state, self.ids[prefix[-1] - 1])
        return found

    def initial(self) -> tuple[int, ...]:
        return ()

    def score(self, state: tuple[int, ...], symbol: int) -> tuple[float, tuple[int, ...]]:
        return self._entry(state)[0][symbol - 1], (*state, symbol)

    def final(self, state: tuple[int, ...]) -> float:
        return self._entry(state)[0][-1] if self.end is not None else 0.0


class WordLMScorer:
    """An Elman word LM (``WordRun``) as a CTC ``Scorer``: 0 while a word is spelled; at the
    space that ends it, log p(w | the words before); at the end, the last word's and the
    sentence end's. A word the LM does not know scores log p(<unk> | ...) − log V, its
    unknown mass shared among as many unseen spellings as it knows words (V), so a misspelling
    does not outscore a rare word it knows. States are (the words so far as ids, the word
    being spelled); each history's LM state is computed once."""

    def __init__(self, run: Any, symbols: str) -> None:
        if run.backward:
            raise ValueError(
                f"word_lm: the language model {run.path} reads text backwards; fusion needs a "
                "forward word LM"
            )
        if run.tokenizer.kind == "bpe":
            raise ValueError(
                f"word_lm: the language model {run.path} reads BPE pieces; fusion scores whole "
                "words: train it with --tokenizer whitespace"
            )
        tokens = run.names()
        self.model, self.symbols = run.model, symbols
        self.index = {t: i for i, t in enumerate(tokens)}
        self.unknown = -math.log(len(tokens))
        self.cache: dict[tuple[int, ...], tuple[Tensor, Any]] = {(): self._step(None, EOS_ID)}

    @torch.no_grad()
    def _step(self, state: Any, token: int) -> tuple[Tensor, Any]:
        logits, new = self.model(torch.tensor([[token]]), state=state)
        return torch.log_softmax(logits[0, -1].double(), -1), new

    def _next(self, words: tuple[int, ...]) -> Tensor:
        """log p(· | words), the LM run once per history (a sentence start before them)."""
        found = self.cache.get(words)
        if found is None:
            self._next(words[:-1])
            found = self._step(self.cache[words[:-1]][1], words[-1])
            self.cache[words] = found
        return found[0]

    def _word(self, words: tuple[int, ...], word: str) -> tuple[float, tuple[int, ...]]:
        token = self.index.get(word, UNK_ID)
        logp = float(self._next(words)[token])
        return (logp + self.unknown if token == UNK_ID else logp), (*words, token)

    def initial(self) -> tuple[tuple[int, ...], str]:
        return (), ""

    def score(self, state: tuple[tuple[int, ...], str], symbol: int):
        words, spelled = state
        c = self.symbols[symbol - 1]
        if c != " ":
            return 0.0, (words, spelled + c)
        if not spelled:  # a space after a space, or first: nothing ends here
            return 0.0, state
        logp, words = self._word(words, spelled)
        return logp, (words, "")

    def final(self, state: tuple[tuple[int, ...], str]) -> float:
        words, spelled = state
        logp = 0.0
        if spelled:
            logp, words = self._word(words, spelled)
        return logp + float(self._next(words)[EOS_ID])


class Mixed:
    """Several scorers as one: Σ weight · score (every weight >= 0, so the sum stays <= 0, as
    the search's bound needs)."""

    def __init__(self, parts: list[tuple[Any, float]]) -> None:
        self.parts = parts

    def initial(self) -> tuple:
        return tuple(scorer.initial() for scorer, _ in self.parts)

    def score(self, state: tuple, symbol: int) -> tuple[float, tuple]:
        results = [sc.score(st, symbol) for (sc, _), st in zip(self.parts, state, strict=True)]
        total = sum(w * logp for (_, w), (logp, _) in zip(self.parts, results, strict=True))
        return total, tuple(new for _, new in results)

    def final(self, state: tuple) -> float:
        return sum(w * sc.final(st) for (sc, w), st in zip(self.parts, state, strict=True))


@dataclass(frozen=True)
class Decoding:
    """``beam`` 1 is greedy; wider, prefix beam search, with ``lm`` (a loaded character-LM
    run) fused in at weight ``lm_weight``, ``word_lm`` (a loaded word-LM run) at
    ``word_lm_weight``, ``word_bonus`` per symbol, and ``lexicon_penalty`` per word outside
    ``lexicon`` (a ``Lexicon``)."""

    beam: int = 1
    lm: Any = None
    lm_weight: float = 0.5
    word_bonus: float = 1.0
    prune: float = -10.0
    word_lm: Any = None
    word_lm_weight: float = 0.5
    lexicon: Lexicon | None = None
    lexicon_penalty: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.beam, bool) or not isinstance(self.beam, int) or self.beam < 1:
            raise ValueError(f"beam must be an integer >= 1, got {self.beam!r}")
        for name in ("lm_weight", "word_bonus", "word_lm_weight", "lexicon_penalty"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        for name in ("lm_weight", "word_lm_weight", "lexicon_penalty"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.fused and self.beam == 1:
            raise ValueError(
                "beam: fusion with a language model or a lexicon needs a beam search, got "
                "beam=1; give beam > 1 (e.g. 16)"
            )

    @property
    def fused(self) -> bool:
        return self.has_lm or self.lexicon is not None

    @property
    def has_lm(self) -> bool:
        """A language model is fused in, so the search adds ``word_bonus`` per symbol."""
        return self.lm is not None or self.word_lm is not None

    @classmethod
    def of(
        cls,
        beam: int | None = None,
        lm: str | Path | None = None,
        lm_weight: float | None = None,
        word_bonus: float | None = None,
        word_lm: str | Path | None = None,
        word_lm_weight: float | None = None,
        lexicon: str | Path | None = None,
        lexicon_penalty: float | None = None,
    ) -> Decoding:
        """From command-line values (None: the default; an LM or a lexicon without a beam
        gets 16)."""
        if lm is None and lm_weight is not None:
            raise ValueError("--lm-weight weighs a character language model: give --lm DIR")
        if word_lm is None and word_lm_weight is not None:
            raise ValueError("--word-lm-weight weighs a word language model: give --word-lm DIR")
        if lexicon is None and lexicon_penalty is not None:
            raise ValueError("--lexicon-penalty goes with a lexicon: give --lexicon FILE")
        if lm is None and word_lm is None and word_bonus is not None:
            raise ValueError("--word-bonus goes with a language model: give --lm or --word-lm")
        runs = {
            "lm": _lm_run(lm, "charlm", "--lm"),
            "word_lm": _lm_run(word_lm, "wordlm", "--word-lm"),
            "lexicon": None if lexicon is None else Lexicon.read(lexicon),
        }
        fused = any(x is not None for x in runs.values())
        values = {"beam": beam or (16 if fused else 1), **runs}
        given = {"lm_weight": lm_weight, "word_bonus": word_bonus, "word_lm_weight": word_lm_weight,
                 "lexicon_penalty": lexicon_penalty}  # fmt: skip
        return cls(**values, **{k: v for k, v in given.items() if v is not None})

    def text(self, log_probs: Tensor, alphabet: Alphabet) -> str:
        if self.beam == 1:
            return alphabet.normalise(alphabet.decode(ctc.greedy(log_probs, BLANK)))
        parts = []
        if self.lm is not None:
            parts.append((CharLMScorer(self.lm, alphabet.symbols), self.lm_weight))
        if self.word_lm is not None:
            parts.append((WordLMScorer(self.word_lm, alphabet.symbols), self.word_lm_weight))
        if self.lexicon is not None:
            parts.append((LexiconScorer(self.lexicon, alphabet.symbols), self.lexicon_penalty))
        scorer = Mixed(parts) if parts else None  # the weights are in the mix: α = 1
        bonus = self.word_bonus if self.has_lm else 0.0
        found = ctc.prefix_beam_search(log_probs, self.beam, BLANK, scorer, 1.0, bonus, self.prune)
        return alphabet.normalise(alphabet.decode(list(found[0].tokens)))

    def describe(self) -> dict:
        if self.beam == 1:
            return {"search": "greedy"}
        out: dict = {"search": "prefix beam", "beam": self.beam}
        if self.lm is not None:
            out |= {"lm": str(self.lm.path), "lm_weight": self.lm_weight}
        if self.word_lm is not None:
            out |= {"word_lm": str(self.word_lm.path), "word_lm_weight": self.word_lm_weight}
        if self.lexicon is not None:
            out |= {"lexicon": self.lexicon.path, "lexicon_words": len(self.lexicon),
                    "lexicon_penalty": self.lexicon_penalty}  # fmt: skip
        if self.has_lm:
            out["word_bonus"] = self.word_bonus
        return out


def _lm_run(path: str | Path | None, task: str, option: str) -> Any:
    """The ``task`` run at ``path`` (None without one)."""
    if path is None:
        return None
    from elman.tasks.registry import load_run

    run = load_run(path)
    if run.task != task:
        raise ValueError(f"{option}: expected a {task} run, {path} holds a {run.task} model")
    return run


__all__ = ["CharLMScorer", "Decoding", "Mixed", "WordLMScorer"]
