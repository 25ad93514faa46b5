"""CTC decoding on hand-built posteriors: greedy paths, repeats and blanks, the prefix beam
search against brute-force enumeration of every alignment, shallow fusion, word timings."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from elman.ctc import (
    Hypothesis,
    WordScorer,
    alignment,
    collapse,
    greedy,
    greedy_batch,
    prefix_beam_search,
    word_timings,
)

SYMBOLS = ["_", " ", "a", "b", "h", "i", "o"]  # 0 is the blank


def peaked(path: list[int], vocab: int = len(SYMBOLS), p: float = 0.9) -> torch.Tensor:
    """Log-probabilities (T, V) with ``p`` on the path's symbol and the rest spread evenly."""
    probs = torch.full((len(path), vocab), (1 - p) / (vocab - 1), dtype=torch.float64)
    probs[torch.arange(len(path)), path] = p
    return probs.log()


def from_probs(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64).log()


def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse([2, 2, 0, 2, 3, 3, 0, 0]) == [2, 2, 3]
    assert collapse([1, 1, 2], blank=1) == [2]


def test_repeated_symbols_need_a_blank_between():
    double, single = peaked([2, 2, 0, 2]), peaked([2, 2, 2, 2])
    assert greedy(double) == [2, 2]
    assert greedy(single) == [2]
    assert prefix_beam_search(double)[0].tokens == (2, 2)
    assert prefix_beam_search(single)[0].tokens == (2,)
    spaced = peaked([2, 0, 1, 2])  # "a a": a space between two a's
    assert greedy(spaced) == list(prefix_beam_search(spaced)[0].tokens) == [2, 1, 2]


def test_all_blank_decodes_to_nothing():
    blanks = peaked([0] * 6)
    assert greedy(blanks) == []
    best = prefix_beam_search(blanks)[0]
    assert best.tokens == () and best.log_prob == pytest.approx(6 * math.log(0.9))
    assert greedy(torch.zeros(0, 4)) == [] and prefix_beam_search(torch.zeros(0, 4))[0].tokens == ()


def test_the_most_likely_path_is_not_the_most_likely_labelling():
    # each frame: blank 0.6, a 0.4. Best path "∅∅" (0.36) -> ""; but "a" has 0.16 + 2·0.24
    lp = from_probs([[0.6, 0.4], [0.6, 0.4]])
    assert greedy(lp) == []
    best, second = prefix_beam_search(lp, beam=4)
    assert best.tokens == (1,) and best.log_prob == pytest.approx(math.log(0.64))
    assert second.tokens == () and second.log_prob == pytest.approx(math.log(0.36))


def brute_force(lp: torch.Tensor) -> dict[tuple[int, ...], float]:
    """p(l | x) for every labelling, summing Π_t y^t_{π_t} over all V^T paths."""
    probs = lp.exp()
    total: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        p = math.prod(float(probs[t, k]) for t, k in enumerate(path))
        label = tuple(collapse(path))
        total[label] = total.get(label, 0.0) + p
    return total


@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_gives_the_exact_probability_of_every_labelling(seed):
    g = torch.Generator().manual_seed(seed)
    lp = torch.randn(4, 3, generator=g, dtype=torch.float64).log_softmax(-1)
    exact = brute_force(lp)
    hyps = prefix_beam_search(lp, beam=100, prune=float("-inf"))
    assert {h.tokens for h in hyps} == set(exact)
    for h in hyps:
        assert h.log_prob == pytest.approx(math.log(exact[h.tokens]), abs=1e-12)
        assert h.lm == 0 and h.total == h.log_prob  # no scorer: acoustic ranking
    assert hyps[0].tokens == max(exact, key=exact.get)
    assert sum(math.exp(h.log_prob) for h in hyps) == pytest.approx(1.0)


def random_posteriors(seed: int, frames: int, vocab: int, sharp: float = 4.0) -> torch.Tensor:
    """Peaky posteriors like a trained CTC model's: mostly blanks, a symbol now and then."""
    g = torch.Generator().manual_seed(seed)
    symbols = torch.randint(1, vocab, (frames,), generator=g)
    path = torch.where(torch.rand(frames, generator=g) < 0.6, 0, symbols)
    logits = torch.randn(frames, vocab, generator=g) + sharp * torch.nn.functional.one_hot(
        path, vocab
    )
    return logits.log_softmax(-1)


@pytest.mark.parametrize("seed", range(5))
def test_beam_one_equals_greedy_on_typical_posteriors(seed):
    lp = random_posteriors(seed, 60, 8)
    assert list(prefix_beam_search(lp, beam=1)[0].tokens) == greedy(lp)


def test_a_long_utterance_decodes_like_greedy():
    lp = random_posteriors(7, 500, 29, sharp=8.0)
    hyps = prefix_beam_search(lp, beam=16)
    assert len(hyps) == 16 and list(hyps[0].tokens) == greedy(lp)
    assert all(a.total >= b.total for a, b in itertools.pairwise(hyps))


def lse(a: float, b: float) -> float:
    return (
        a
        if b == -math.inf
        else b
        if a == -math.inf
        else max(a, b) + math.log1p(math.exp(-abs(a - b)))
    )


def add(beams: dict, key: tuple, i: int, logp: float) -> None:
    probs = list(beams.get(key, (-math.inf, -math.inf)))
    probs[i] = lse(probs[i], logp)
    beams[key] = tuple(probs)


def exhaustive_search(lp, beam, scorer, alpha, beta) -> dict[tuple, tuple[float, float]]:
    """Hannun et al.'s search without shortcuts: every prefix + every symbol, all ranked;
    {labelling: (acoustic log-prob, lm log-prob)}."""
    beams, lm = {(): (0.0, -math.inf)}, {(): (0.0, scorer.initial())}
    for row in lp.tolist():
        nxt: dict = {}
        for prefix, (pb, pnb) in beams.items():
            for c, y in enumerate(row):
                key = (*prefix, c)
                if c == 0:
                    add(nxt, prefix, 0, lse(pb, pnb) + y)
                    continue
                if prefix and c == prefix[-1]:
                    add(nxt, prefix, 1, pnb + y)
                add(nxt, key, 1, (pb if prefix and c == prefix[-1] else lse(pb, pnb)) + y)
                if key not in lm:
                    logp, state = scorer.score(lm[prefix][1], c)
                    lm[key] = (lm[prefix][0] + logp, state)
        nxt = {p: v for p, v in nxt.items() if lse(*v) > -math.inf}
        rank = {p: lse(*v) + alpha * lm[p][0] + beta * len(p) for p, v in nxt.items()}
        beams = {p: nxt[p] for p in sorted(rank, key=rank.get, reverse=True)[:beam]}
    return {p: (lse(*v), lm[p][0] + scorer.final(lm[p][1])) for p, v in beams.items()}


@pytest.mark.parametrize("seed", range(3))
def test_the_search_shortcuts_change_nothing(seed):
    # trying extensions best first and stopping early keeps what the full search keeps
    lp = random_posteriors(seed, 30, len(SYMBOLS), sharp=1.5).double()
    scorer = WordScorer({"hi": -0.5, "a": -1.0, "ab": -3.0}, SYMBOLS, unknown=-4.0)
    hyps = prefix_beam_search(lp, beam=5, scorer=scorer, alpha=0.8, beta=0.3, prune=-math.inf)
    ref = exhaustive_search(lp, 5, scorer, 0.8, 0.3)
    assert {h.tokens for h in hyps} == set(ref)
    for h in hyps:
        assert (h.log_prob, h.lm) == pytest.approx(ref[h.tokens], abs=1e-9)


def test_a_word_scorer_changes_the_result():
    a, b, i, space = SYMBOLS.index("a"), SYMBOLS.index("b"), SYMBOLS.index("i"), 1
    #        "h"          then "b" (0.5) or "i" (0.4)       a space, then "a"
    rows = [[0.1, 0, 0, 0, 0.9, 0, 0], [0.1, 0, 0, 0.5, 0, 0.4, 0],
            [0.1, 0.9, 0, 0, 0, 0, 0], [0.1, 0, 0.9, 0, 0, 0, 0]]  # fmt: skip
    lp = from_probs([[p + 1e-9 for p in r] for r in rows]).log_softmax(-1)
    h = SYMBOLS.index("h")
    assert prefix_beam_search(lp)[0].tokens == (h, b, space, a)
    scorer = WordScorer({"hi": math.log(0.5), "a": math.log(0.4)}, SYMBOLS, unknown=-20.0)
    best = prefix_beam_search(lp, scorer=scorer, alpha=1.0, beta=0.0)[0]
    assert best.tokens == (h, i, space, a)
    assert best.lm == pytest.approx(math.log(0.5) + math.log(0.4))  # "a" scored by final
    assert best.total == pytest.approx(best.log_prob + best.lm)
    bonus = prefix_beam_search(lp, scorer=scorer, alpha=1.0, beta=2.0)[0]
    assert bonus.total == pytest.approx(bonus.log_prob + bonus.lm + 2.0 * 4)


def test_word_scorer_scores_at_word_boundaries():
    scorer = WordScorer({"hi": -1.0}, SYMBOLS)
    state, steps = scorer.initial(), []
    for k in (4, 5, 1, 2, 1, 1):  # "hi a  "
        logp, state = scorer.score(state, k)
        steps.append(logp)
    assert steps == [0.0, 0.0, -1.0, 0.0, -10.0, 0.0] and scorer.final(state) == 0.0


def test_word_timings_follow_the_greedy_path():
    h, i, o = (SYMBOLS.index(s) for s in "hio")
    path = [0, h, h, i, 0, 1, 0, o, o, 0, 1, 1]  # "hi o "
    assert alignment(peaked(path)) == [(h, 1, 2), (i, 3, 3), (1, 5, 5), (o, 7, 8), (1, 10, 11)]
    words = word_timings(peaked(path), SYMBOLS, seconds_per_frame=0.04)
    assert [w for w, _, _ in words] == ["hi", "o"]
    assert words[0][1:] == pytest.approx((0.04, 0.16))  # frames 1..3
    assert words[1][1:] == pytest.approx((0.28, 0.36))  # frames 7..8
    with pytest.raises(ValueError, match="symbols must name all 7 outputs, got 2"):
        word_timings(peaked(path), ["_", " "])


def test_greedy_batch_reads_each_row_to_its_length():
    a, b = SYMBOLS.index("a"), SYMBOLS.index("b")
    rows = torch.stack([peaked([a, 0, b, b]), peaked([b, b, a, a])])
    assert greedy_batch(rows) == [[a, b], [b, a]]
    assert greedy_batch(rows, torch.tensor([2, 3])) == [[a], [b, a]]
    assert greedy_batch(rows, torch.tensor([0, 4])) == [[], [b, a]]
    with pytest.raises(ValueError, match="lengths must hold one length per row"):
        greedy_batch(rows, torch.tensor([1]))


def test_bad_arguments_are_refused():
    lp = peaked([0, 2])
    with pytest.raises(ValueError, match=r"blank must be an index in \[0, 7\), got 7"):
        greedy(lp, blank=7)
    with pytest.raises(ValueError, match=r"log_probs must be a tensor \(T, V\)"):
        greedy(lp[None])
    with pytest.raises(ValueError, match="beam must be an integer >= 1, got 0"):
        prefix_beam_search(lp, beam=0)
    with pytest.raises(ValueError, match="alpha must be a number"):
        prefix_beam_search(lp, alpha="1")
    assert isinstance(prefix_beam_search(lp)[0], Hypothesis)
