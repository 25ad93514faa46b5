"""Decoding: choosing tokens from a model's logits, one at a time (greedy, temperature, top-k
and top-p sampling) or as a search over whole sequences (beam search).

p_i = softmax(z_i / τ)                       temperature τ > 0 (τ = 0: greedy argmax)
top-k: keep the k largest p_i                (Fan, Lewis & Dauphin 2018)
top-p: keep the smallest set with Σ p_i ≥ p  (nucleus; Holtzman et al. 2020)
beam:  keep the K best prefixes by Σ_t log p(y_t | y_<t, x) at every step
rank:  finished hypotheses by Σ_t log p / |y|^α (length normalisation; α = 0: none)

The searches drive any model through a ``step(tokens (N,), state) -> (logits (N, V), state,
weights (N, S) or None)`` function and a ``select(state, rows)`` that reorders its state,
so encoder-decoders and language models share them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

SEED_MAX = 2**63 - 1  # torch.Generator takes 64 bits; the CLI's integers are signed


TEMPERATURE = 1.0  # the default of every sampler: the CLI's, the server's and the API's


@dataclass(frozen=True)
class Sampling:
    """temperature: 0 picks the most likely token (greedy); top_k / top_p restrict the choice
    before sampling (None: no restriction); seed: a fixed seed gives reproducible samples."""

    temperature: float = TEMPERATURE
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        number = not isinstance(t, bool) and isinstance(t, int | float)
        if not (number and (t == 0 or 1e-6 <= t <= 1e6)):  # past them logits / t overflows
            raise ValueError(f"temperature must be 0 (greedy) or in [1e-6, 1e6], got {t!r}")
        k = self.top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"top_k must be an integer >= 1, got {k!r}")
        p = self.top_p
        if p is not None and (
            isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1
        ):
            raise ValueError(f"top_p must be a number in (0, 1], got {p!r}")
        s = self.seed
        if s is not None and not (
            not isinstance(s, bool) and isinstance(s, int) and 0 <= s <= SEED_MAX
        ):
            raise ValueError(f"seed must be an integer in [0, 2**63 - 1], got {s!r}")

    def generator(self) -> torch.Generator | None:
        return None if self.seed is None else torch.Generator().manual_seed(self.seed)


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """``logits`` (B, V) with everything outside the top-k / nucleus set to -inf."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # mass before this token already reaches p
        drop[..., 0] = False  # the likeliest token always stays (a tiny p rounds to 0)
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def next_token(
    logits: Tensor, sampling: Sampling, generator: torch.Generator | None = None
) -> Tensor:
    """One token id per row of ``logits`` (B, V) -> (B,)."""
    if sampling.temperature == 0:
        return logits.argmax(-1)
    z = logits.float() / sampling.temperature
    if bool(torch.isnan(z).any() or torch.isposinf(z).any()):  # -inf: a masked token, fine
        raise ValueError(
            "the model's scores are not finite (NaN or inf), so there is nothing to sample "
            "from: its weights diverged in training (retrain with a lower --lr)"
        )
    z = filter_logits(z, sampling.top_k, sampling.top_p)
    return torch.multinomial(z.softmax(-1), 1, generator=generator).squeeze(-1)


StepFn = Callable[[Tensor, Any], tuple[Tensor, Any, Tensor | None]]
SelectFn = Callable[[Any, Tensor], Any]


@dataclass(frozen=True)
class Hypothesis:
    """One decoded sequence: ``tokens`` (without the end token), ``logprob`` Σ log p of its
    tokens and the end token, ``score`` the ranking score (length-normalised logprob),
    ``finished`` whether it ended with the end token within the length limit, and
    ``attention`` (len(tokens) + finished, S) weights when the model attends."""

    tokens: list[int]
    logprob: float
    score: float
    finished: bool
    attention: Tensor | None = None


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _hypothesis(
    row: Tensor, logprob: float, eos: int, alpha: float, attention: Tensor | None
) -> Hypothesis:
    tokens = row.tolist()
    finished = eos in tokens
    n = tokens.index(eos) + 1 if finished else len(tokens)
    score = logprob / n**alpha if alpha else logprob
    kept = None if attention is None else attention[:n]
    return Hypothesis(tokens[: n - finished], logprob, score, finished, kept)


@torch.no_grad()
def greedy_search(
    step: StepFn,
    state: Any,
    batch: int,
    start: int,
    eos: int,
    max_len: int,
    sampling: Sampling | None = None,
) -> list[Hypothesis]:
    """One sequence per input: the most likely token at each step (or one sampled by
    ``sampling``), until every row has produced ``eos`` or ``max_len`` tokens."""
    _check_count("max_len", max_len)
    sampling = sampling or Sampling(temperature=0.0)
    generator = sampling.generator()
    tokens = torch.full((batch,), start, dtype=torch.int64)
    done = torch.zeros(batch, dtype=torch.bool)
    logprob = torch.zeros(batch, dtype=torch.float64)
    rows, weights = [], []
    for _ in range(max_len):
        logits, state, w = step(tokens.to(_device(state)), state)
        logits = logits.float().cpu()
        tokens = next_token(logits, sampling, generator)
        tokens = torch.where(done, eos, tokens)
        picked = logits.log_softmax(-1).gather(1, tokens[:, None]).squeeze(1)
        logprob += torch.where(done, 0.0, picked).double()
        rows.append(tokens)
        weights.append(None if w is None else w.float().cpu())
        done |= tokens == eos
        if bool(done.all()):
            break
    seqs = torch.stack(rows, dim=1)
    att = None if weights[0] is None else torch.stack(weights, dim=1)
    return [
        _hypothesis(seqs[b], float(logprob[b]), eos, 0.0, None if att is None else att[b])
        for b in range(batch)
    ]


@torch.no_grad()
def beam_search(
    step: StepFn,
    select: SelectFn,
    state: Any,
    batch: int,
    start: int,
    eos: int,
    beam: int,
    max_len: int,
    alpha: float = 0.0,
    nbest: int | None = None,
) -> list[list[Hypothesis]]:
    """The ``nbest`` (default ``beam``) best sequences per input, best first.

    All inputs search together as batch * beam rows. A hypothesis that has produced ``eos``
    keeps its place and score; the search ends when all rows have finished or after
    ``max_len`` tokens (unfinished hypotheses are then returned with ``finished=False``).
    Finished ones are ranked by logprob / length**alpha. A beam wider than the number of
    distinct prefixes (e.g. wider than the vocabulary at the first step) is allowed: the
    slots no prefix fills stay empty and are never returned.
    """
    _check_count("beam", beam)
    _check_count("max_len", max_len)
    nbest = beam if nbest is None else nbest
    _check_count("nbest", nbest)
    if nbest > beam:
        raise ValueError(f"nbest must be <= beam ({beam}), got {nbest}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not alpha >= 0:
        raise ValueError(f"alpha (length normalisation) must be a number >= 0, got {alpha!r}")
    rows = batch * beam
    device = _device(state)
    state = select(state, torch.arange(batch, device=device).repeat_interleave(beam))
    tokens = torch.full((rows,), start, dtype=torch.int64)
    scores = torch.full((batch, beam), float("-inf"), dtype=torch.float64)
    scores[:, 0] = 0.0  # every beam starts as the same empty prefix: expand only one
    done = torch.zeros(rows, dtype=torch.bool)
    seqs = torch.zeros(rows, 0, dtype=torch.int64)
    att: Tensor | None = None
    offsets = torch.arange(batch)[:, None] * beam
    for _ in range(max_len):
        logits, state, w = step(tokens.to(device), state)
        logp = logits.double().cpu().log_softmax(-1)  # (rows, V)
        vocab = logp.shape[1]
        ended = torch.full((vocab,), float("-inf"), dtype=torch.float64)
        ended[eos] = 0.0  # a finished hypothesis only "continues" with eos, for free
        logp = torch.where(done[:, None], ended, logp)
        total = (scores.view(rows, 1) + logp).view(batch, beam * vocab)
        scores, index = total.topk(beam, dim=1)  # (B, K), sorted best first
        parent = (index // vocab + offsets).view(-1)
        tokens = (index % vocab).view(-1)
        done = done[parent] | (tokens == eos)
        seqs = torch.cat([seqs[parent], tokens[:, None]], dim=1)
        if w is not None:
            w = w.float().cpu()[parent][:, None]
            att = w if att is None else torch.cat([att[parent], w], dim=1)
        state = select(state, parent.to(device))
        if bool((done | scores.view(-1).isneginf()).all()):  # empty slots never finish
            break
    return _ranked(seqs, scores.view(-1), eos, alpha, att, batch, beam, nbest)


def _ranked(
    seqs: Tensor,
    scores: Tensor,
    eos: int,
    alpha: float,
    att: Tensor | None,
    batch: int,
    beam: int,
    nbest: int,
) -> list[list[Hypothesis]]:
    out = []
    for b in range(batch):
        hyps = [
            _hypothesis(seqs[r], float(scores[r]), eos, alpha, None if att is None else att[r])
            for r in range(b * beam, (b + 1) * beam)
            if scores[r] > float("-inf")
        ]
        hyps.sort(key=lambda h: (not h.finished, -h.score))
        out.append(hyps[:nbest])
    return out


def _device(state: Any) -> torch.device:
    """The device of the first tensor in ``state`` (the CPU if it holds none)."""
    for t in state if isinstance(state, tuple | list) else (state,):
        if isinstance(t, Tensor):
            return t.device
    return torch.device("cpu")
