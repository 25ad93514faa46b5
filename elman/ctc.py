"""CTC decoding: label sequences from per-frame log-probabilities y^t_k (T, V) over symbols
and a blank ∅ (Graves, Fernández, Gomez & Schmidhuber 2006).

B(π): merge repeated symbols of a path π, then drop blanks    ("aa∅ab" -> "aab")
p(l | x) = Σ_{π ∈ B⁻¹(l)} Π_t y^t_{π_t}                         (every alignment of l)
greedy (best path): l ≈ B(π*), π*_t = argmax_k y^t_k

Prefix beam search (Hannun, Maas, Jurafsky & Ng 2014) keeps, per prefix l, the probability
of its alignments so far ending in a blank p_b(l) and in a symbol p_nb(l); at frame t
(right-hand sides from frame t - 1):
    p_b(l)    += y^t_∅ (p_b(l) + p_nb(l))                                   (blank)
    p_nb(l)   += y^t_c p_nb(l)                      c = last(l): repeats merge
    p_nb(l+c) += y^t_c p_b(l)                       c = last(l): needs a blank between
    p_nb(l+c) += y^t_c (p_b(l) + p_nb(l))           c ≠ last(l)
    score(l)   = log(p_b(l) + p_nb(l)) + α log p_LM(l) + β |l|       (shallow fusion)
and keeps the ``beam`` best prefixes; prefixes reached along different paths merge.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor

NEG_INF = float("-inf")


def _log_probs(log_probs: Tensor, blank: int, ndim: int = 2) -> Tensor:
    if not isinstance(log_probs, Tensor) or log_probs.ndim != ndim:
        shape = "(T, V)" if ndim == 2 else "(B, T, V)"
        got = tuple(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs)
        raise ValueError(f"log_probs must be a tensor {shape}, got {got}")
    v = log_probs.shape[-1]
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < v:
        raise ValueError(f"blank must be an index in [0, {v}), got {blank!r}")
    return log_probs.detach()


def collapse(path: Sequence[int], blank: int = 0) -> list[int]:
    """B(π): merge repeats, then drop blanks."""
    out, previous = [], None
    for k in path:
        if k != previous and k != blank:
            out.append(k)
        previous = k
    return out


def greedy(log_probs: Tensor, blank: int = 0) -> list[int]:
    """B(argmax_k y^t_k): the labelling of the single most likely path."""
    return collapse(_log_probs(log_probs, blank).argmax(-1).tolist(), blank)


def greedy_batch(
    log_probs: Tensor, lengths: Tensor | None = None, blank: int = 0
) -> list[list[int]]:
    """``greedy`` for each row of log_probs (B, T, V), reading the first ``lengths[b]``
    frames of row b (all T without lengths)."""
    paths = _log_probs(log_probs, blank, ndim=3).argmax(-1).tolist()
    if lengths is None:
        return [collapse(p, blank) for p in paths]
    if len(lengths) != len(paths):
        raise ValueError(f"lengths must hold one length per row ({len(paths)}), got {len(lengths)}")
    return [collapse(p[: int(n)], blank) for p, n in zip(paths, lengths, strict=True)]


def alignment(log_probs: Tensor, blank: int = 0) -> list[tuple[int, int, int]]:
    """(symbol, first frame, last frame) of each symbol that ``greedy`` emits: the run of
    frames on which the best path holds it."""
    path = _log_probs(log_probs, blank).argmax(-1).tolist()
    runs: list[tuple[int, int, int]] = []
    for t, k in enumerate(path):
        if t and k == path[t - 1]:
            if k != blank:
                runs[-1] = (k, runs[-1][1], t)
        elif k != blank:
            runs.append((k, t, t))
    return runs


def word_timings(
    log_probs: Tensor,
    symbols: Sequence[str],
    blank: int = 0,
    seconds_per_frame: float = 0.01,
    space: str = " ",
) -> list[tuple[str, float, float]]:
    """(word, start, end) in seconds along the greedy path: a word spans from the first frame
    of its first symbol to the end of the last frame of its last one; ``space`` separates
    words. Frame t starts at t · seconds_per_frame."""
    v = _log_probs(log_probs, blank).shape[-1]
    if len(symbols) != v:
        raise ValueError(f"symbols must name all {v} outputs, got {len(symbols)}")
    words: list[tuple[str, float, float]] = []
    word, start, end = "", 0, 0
    for k, first, last in [*alignment(log_probs, blank), (None, 0, 0)]:
        if k is None or symbols[k] == space:
            if word:
                words.append((word, start * seconds_per_frame, (end + 1) * seconds_per_frame))
            word = ""
            continue
        start = first if not word else start
        word, end = word + symbols[k], last
    return words


class Scorer(Protocol):
    """A language model for shallow fusion, fed one symbol at a time. A word-level model
    returns 0 until a space ends a word, then the word's log-probability; ``final`` scores
    what is left at the end (the last word, the end of the sentence)."""

    def initial(self) -> Any: ...

    def score(self, state: Any, symbol: int) -> tuple[float, Any]: ...

    def final(self, state: Any) -> float: ...


@dataclass(frozen=True)
class WordScorer:
    """A unigram word model: log p(w) from ``words``, ``unknown`` for any other word;
    ``symbols`` spells the output ids. Its state is the word typed so far."""

    words: Mapping[str, float]
    symbols: Sequence[str]
    space: str = " "
    unknown: float = -10.0

    def initial(self) -> str:
        return ""

    def score(self, state: str, symbol: int) -> tuple[float, str]:
        if self.symbols[symbol] == self.space:
            return self.final(state), ""
        return 0.0, state + self.symbols[symbol]

    def final(self, state: str) -> float:
        return self.words.get(state, self.unknown) if state else 0.0


@dataclass(frozen=True)
class Hypothesis:
    """A labelling: ``log_prob`` the acoustic log p(l | x) summed over the alignments the
    search kept, ``lm`` Σ of the scorer's log-probabilities (with ``final``; 0 without a
    scorer), ``total`` the ranking score log_prob + α·lm + β·|l| (log_prob without one)."""

    tokens: tuple[int, ...]
    log_prob: float
    lm: float
    total: float


def _lse(a: float, b: float) -> float:
    """log(e^a + e^b)."""
    if a < b:
        a, b = b, a
    return a if b == NEG_INF else a + math.log1p(math.exp(b - a))


def _check_search(beam: object, alpha: object, beta: object, prune: object) -> None:
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be an integer >= 1, got {beam!r}")
    for name, value in (("alpha", alpha), ("beta", beta), ("prune", prune)):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ValueError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if not math.isfinite(beta):
        raise ValueError(f"beta must be a finite number, got {beta!r}")


class _Silent:
    """The scorer of a search without a language model: every symbol scores 0."""

    def initial(self) -> None:
        return None

    def score(self, state: None, symbol: int) -> tuple[float, None]:
        return 0.0, None

    def final(self, state: None) -> float:
        return 0.0


def _stays(beams: dict, row: list[float], allowed: set[int], blank: int) -> dict:
    """The prefixes of the beam after frame t: p_b from a blank, p_nb from a repeat of the
    last symbol c and from the parent (when in the beam) extended by c."""
    out = {}
    y_blank = row[blank] if blank in allowed else NEG_INF
    for prefix, (pb, pnb) in beams.items():
        b, nb = _lse(pb, pnb) + y_blank, NEG_INF
        if prefix and prefix[-1] in allowed:
            c = prefix[-1]
            nb = pnb + row[c]
            parent = beams.get(prefix[:-1])
            if parent is not None:  # the parent needs a blank first when it ends in c too
                nb = _lse(nb, (parent[0] if prefix[-2:-1] == (c,) else _lse(*parent)) + row[c])
        if b > NEG_INF or nb > NEG_INF:
            out[prefix] = (b, nb)
    return out


def _offer(heap: list, beam: int, item: tuple) -> None:
    """Keep ``item`` (total, -arrival, prefix, probs) if it is among the ``beam`` best."""
    if len(heap) < beam:
        heapq.heappush(heap, item)
    elif item > heap[0]:  # (total, -arrival) is unique: prefixes are never compared
        heapq.heapreplace(heap, item)


def _frame(beams, lm, row, allowed, order, blank, beam, scorer, alpha, beta) -> dict:
    """One frame: the ``beam`` best of the stays and of every prefix + c (c in ``order``,
    sorted by y^t_c), trying extensions best first and stopping where even a free language
    model (log p = 0 <= any log-probability) could not reach the beam."""
    heap: list = []
    tick = itertools.count()
    for prefix, probs in _stays(beams, row, allowed, blank).items():
        fused = alpha * lm[prefix][0] + beta * len(prefix)
        _offer(heap, beam, (_lse(*probs) + fused, -next(tick), prefix, probs))
    bound = {p: _lse(*v) + alpha * lm[p][0] + beta * (len(p) + 1) for p, v in beams.items()}
    for prefix in sorted(bound, key=bound.__getitem__, reverse=True):
        pb, pnb = beams[prefix]
        for c in order:
            if len(heap) == beam and bound[prefix] + row[c] <= heap[0][0]:
                break  # so are the rest of this prefix's extensions
            key = (*prefix, c)
            repeat = bool(prefix) and c == prefix[-1]
            if key in beams or (repeat and pb == NEG_INF):
                continue  # merged into the stays / needs a blank first
            if key not in lm:
                logp, state = scorer.score(lm[prefix][1], c)
                lm[key] = (lm[prefix][0] + logp, state)
            acoustic = (pb if repeat else _lse(pb, pnb)) + row[c]
            total = acoustic + alpha * lm[key][0] + beta * len(key)
            _offer(heap, beam, (total, -next(tick), key, (NEG_INF, acoustic)))
    return {item[2]: item[3] for item in sorted(heap, reverse=True)}


def prefix_beam_search(
    log_probs: Tensor,
    beam: int = 16,
    blank: int = 0,
    scorer: Scorer | None = None,
    alpha: float = 0.5,
    beta: float = 1.0,
    prune: float = -10.0,
) -> list[Hypothesis]:
    """The ``beam`` best labellings of log_probs (T, V), best first. With a ``scorer``, every
    appended symbol adds α · its log-probability + β (shallow fusion with an insertion
    bonus) and ``final`` is added at the end; without one, α and β are unused and the
    ranking is acoustic only. Symbols with log y^t_k < ``prune`` are not tried at frame t
    (the frame's best always is): peaky posteriors leave a few per frame. The scorer's
    log-probabilities must be <= 0 (the search skips extensions on that bound)."""
    _check_search(beam, alpha, beta, prune)
    rows = _log_probs(log_probs, blank).double().cpu().tolist()
    if scorer is None:
        scorer, alpha, beta = _Silent(), 0.0, 0.0
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    lm = {(): (0.0, scorer.initial())}  # prefix: (Σ log p_LM, the scorer's state)
    for row in rows:
        allowed = {k for k, p in enumerate(row) if p >= prune}
        allowed.add(max(range(len(row)), key=row.__getitem__))
        order = sorted(allowed - {blank}, key=row.__getitem__, reverse=True)
        beams = _frame(beams, lm, row, allowed, order, blank, beam, scorer, alpha, beta)
        lm = {p: lm[p] for p in beams}
    return _hypotheses(beams, lm, scorer, alpha, beta)


def _hypotheses(beams: dict, lm: dict, scorer: Scorer, alpha: float, beta: float):
    out = []
    for prefix, probs in beams.items():
        acoustic = _lse(*probs)
        language = lm[prefix][0] + scorer.final(lm[prefix][1])
        total = acoustic + alpha * language + beta * len(prefix)
        out.append(Hypothesis(prefix, acoustic, language, total))
    return sorted(out, key=lambda h: h.total, reverse=True)
