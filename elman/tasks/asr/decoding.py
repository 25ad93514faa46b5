"""How CTC posteriors become text: greedy (the best symbol per frame, repeats merged, blanks
dropped), or prefix beam search with shallow fusion of an Elman character language model,

    score(l) = log p_CTC(l | x) + α · log p_LM(l) + β · |l|        (Hannun et al. 2014)

α the LM's weight, β a bonus per symbol against the LM's bias to short transcripts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from elman import ctc
from elman.tasks.asr.alphabet import BLANK, Alphabet


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


@dataclass(frozen=True)
class Decoding:
    """``beam`` 1 is greedy; wider, prefix beam search, with ``lm`` (a loaded character-LM
    run) fused in at weight ``lm_weight`` and ``word_bonus`` per symbol."""

    beam: int = 1
    lm: Any = None
    lm_weight: float = 0.5
    word_bonus: float = 1.0
    prune: float = -10.0

    def __post_init__(self) -> None:
        if isinstance(self.beam, bool) or not isinstance(self.beam, int) or self.beam < 1:
            raise ValueError(f"beam must be an integer >= 1, got {self.beam!r}")
        for name in ("lm_weight", "word_bonus"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.lm is not None and self.beam == 1:
            raise ValueError("lm: fusion needs a beam search; give beam > 1 (e.g. 16)")

    @classmethod
    def of(
        cls,
        beam: int | None = None,
        lm: str | Path | None = None,
        lm_weight: float | None = None,
        word_bonus: float | None = None,
    ) -> Decoding:
        """From command-line values (None: the default; an LM without a beam gets 16)."""
        if lm is None and (lm_weight is not None or word_bonus is not None):
            raise ValueError("--lm-weight and --word-bonus weigh a language model: give --lm DIR")
        run = None
        if lm is not None:
            from elman.tasks.registry import load_run

            run = load_run(lm)
            if run.task != "charlm":
                raise ValueError(f"--lm: expected a charlm run, {lm} holds a {run.task} model")
        values = {"beam": beam or (16 if lm else 1), "lm": run}
        values |= {
            k: v for k, v in (("lm_weight", lm_weight), ("word_bonus", word_bonus)) if v is not None
        }
        return cls(**values)

    def text(self, log_probs: Tensor, alphabet: Alphabet) -> str:
        if self.beam == 1:
            return alphabet.normalise(alphabet.decode(ctc.greedy(log_probs, BLANK)))
        scorer = CharLMScorer(self.lm, alphabet.symbols) if self.lm is not None else None
        best = ctc.prefix_beam_search(
            log_probs, self.beam, BLANK, scorer, self.lm_weight, self.word_bonus, self.prune
        )[0]
        return alphabet.normalise(alphabet.decode(list(best.tokens)))

    def describe(self) -> dict:
        if self.beam == 1:
            return {"search": "greedy"}
        out: dict = {"search": "prefix beam", "beam": self.beam}
        if self.lm is not None:
            out |= {
                "lm": str(self.lm.path),
                "lm_weight": self.lm_weight,
                "word_bonus": self.word_bonus,
            }
        return out


__all__ = ["CharLMScorer", "Decoding"]
