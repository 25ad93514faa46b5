"""Attention modules: shapes, masks, single-step queries, errors."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn

MODULES = [
    lambda: enn.AdditiveAttention(6, 4, 5),
    lambda: enn.GeneralAttention(6, 4),
    lambda: enn.DotAttention(),
    lambda: enn.DotAttention(scaled=True),
]


@pytest.mark.parametrize("make", MODULES)
def test_weights_sum_to_one_over_unmasked_and_zero_on_padding(make):
    torch.manual_seed(0)
    attn = make()
    q_size = 4 if isinstance(attn, enn.DotAttention) else 6
    q, k, v = torch.randn(3, 2, q_size), torch.randn(3, 5, 4), torch.randn(3, 5, 7)
    mask = torch.arange(5)[None, :] < torch.tensor([5, 2, 3])[:, None]
    context, weights = attn(q, k, v, mask)
    assert context.shape == (3, 2, 7) and weights.shape == (3, 2, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2))
    assert (weights[1, :, 2:] == 0).all() and (weights[2, :, 3:] == 0).all()
    torch.testing.assert_close(context, weights @ v)


@pytest.mark.parametrize("make", MODULES)
def test_single_query_step_equals_one_row(make):
    torch.manual_seed(0)
    attn = make()
    q_size = 4 if isinstance(attn, enn.DotAttention) else 6
    q, k = torch.randn(3, 2, q_size), torch.randn(3, 5, 4)
    context, weights = attn(q, k)
    c1, w1 = attn(q[:, 1], k)
    torch.testing.assert_close(c1, context[:, 1])
    torch.testing.assert_close(w1, weights[:, 1])


def test_padding_values_do_not_change_context():
    torch.manual_seed(0)
    attn = enn.AdditiveAttention(6, 4)
    q, k = torch.randn(2, 6), torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    c1 = attn(q, k, mask=mask).context
    k2 = k.clone()
    k2[1, 2:] = 100.0
    torch.testing.assert_close(attn(q, k2, mask=mask).context[1], c1[1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a(torch.randn(2, 5), torch.randn(2, 3, 4)), r"expected size 6 \(query_size\)"),
        (lambda a: a(torch.randn(2, 6), torch.randn(2, 3, 5)), r"expected size 4 \(key_size\)"),
        (lambda a: a(torch.randn(2, 6), torch.randn(3, 3, 4)), "the query's batch size"),
        (
            lambda a: a(torch.randn(2, 6), torch.randn(2, 3, 4), torch.randn(2, 4, 4)),
            "the keys' length Tk",
        ),
        (
            lambda a: a(torch.randn(2, 6), torch.randn(2, 3, 4), mask=torch.ones(2, 3)),
            r"mask: expected a bool tensor of shape \(B, Tk\) = \(2, 3\)",
        ),
    ],
)
def test_attention_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(enn.AdditiveAttention(6, 4))


def test_dot_attention_needs_equal_sizes():
    with pytest.raises(ValueError, match="dot attention needs Hq == Hk"):
        enn.DotAttention()(torch.randn(2, 6), torch.randn(2, 3, 4))
