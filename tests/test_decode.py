"""Sampling: greedy, temperature, top-k, top-p, seeds."""

from __future__ import annotations

import pytest
import torch

from elman.decode import Sampling, filter_logits, next_token


def test_greedy_takes_the_argmax():
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 0.0]])
    assert next_token(logits, Sampling(temperature=0)).tolist() == [1, 0]


def test_top_k_keeps_k_largest():
    z = filter_logits(torch.tensor([[1.0, 4.0, 3.0, 2.0]]), top_k=2)
    assert torch.isinf(z).tolist() == [[True, False, False, True]]


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    z = filter_logits(probs.log(), top_p=0.8)
    assert torch.isfinite(z).tolist() == [[True, True, False, False]]
    z = filter_logits(probs.log(), top_p=0.81)
    assert torch.isfinite(z).tolist() == [[True, True, True, False]]
    z = filter_logits(probs.log(), top_p=0.1)  # the top token always stays
    assert torch.isfinite(z).tolist() == [[True, False, False, False]]


def test_seeded_sampling_is_reproducible_and_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).expand(4000, 3)
    s = Sampling(temperature=1.0, seed=3)
    a, b = next_token(logits, s, s.generator()), next_token(logits, s, s.generator())
    assert torch.equal(a, b)
    freq = torch.bincount(a, minlength=3) / 4000
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.03)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -1}, r"temperature must be 0 \(greedy\) or in \[1e-6, 1e6\]"),
        ({"temperature": 1e-320}, r"temperature must be 0 \(greedy\) or in"),
        (
            {"seed": 2**70},
            r"seed must be an integer in \[0, 2\*\*63 - 1\], got 1180591620717411303424",
        ),
        ({"seed": -1}, "seed must be an integer in"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"top_p": 1.5}, r"top_p must be a number in \(0, 1\]"),
    ],
)
def test_bad_sampling_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Sampling(**kwargs)


def test_a_tiny_top_p_keeps_the_likeliest_token():
    logits = torch.tensor([[0.0, 3.0, 1.0]])
    assert next_token(logits, Sampling(top_p=1e-320, seed=0)).tolist() == [1]


def test_scores_that_are_not_finite_are_a_clear_error():
    with pytest.raises(ValueError, match="not finite"):
        next_token(torch.tensor([[0.0, float("nan")]]), Sampling(seed=0))
    masked = torch.tensor([[float("-inf"), 0.0]])  # a masked token is fine
    assert next_token(masked, Sampling(seed=0)).tolist() == [1]
