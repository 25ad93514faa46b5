"""Attention scores and masked softmax: formulas, masks, gradients."""

from __future__ import annotations

import torch
from torch.autograd import gradcheck

from elman import functional as EF


def _t(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def test_additive_scores_follow_bahdanau():
    torch.manual_seed(0)
    q, k, w_q, w_k, v, b = _t(2, 3, 4), _t(2, 5, 6), _t(7, 4), _t(7, 6), _t(7), _t(7)
    e = EF.additive_scores(q, k, w_q, w_k, v, b)
    assert e.shape == (2, 3, 5)
    want = torch.tanh(w_q @ q[1, 2] + w_k @ k[1, 4] + b) @ v
    torch.testing.assert_close(e[1, 2, 4], want)
    assert gradcheck(EF.additive_scores, (q, k, w_q, w_k, v, b))


def test_dot_and_general_scores():
    torch.manual_seed(0)
    q, k, w = _t(2, 3, 4), _t(2, 5, 4), _t(4, 4)
    torch.testing.assert_close(EF.dot_scores(q, k)[0, 1, 2], q[0, 1] @ k[0, 2])
    torch.testing.assert_close(EF.dot_scores(q, k, scaled=True), EF.dot_scores(q, k) / 2.0)
    torch.testing.assert_close(EF.general_scores(q, k, w)[1, 0, 3], q[1, 0] @ w @ k[1, 3])
    assert gradcheck(EF.general_scores, (q, k, w))


def test_masked_softmax_sums_to_one_and_zeroes_masked_positions():
    torch.manual_seed(0)
    scores = torch.randn(3, 2, 4, dtype=torch.float64)
    mask = EF.lengths_to_mask(torch.tensor([4, 2, 1]), 4)
    w = EF.masked_softmax(scores, mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, dtype=torch.float64))
    assert (w[1, :, 2:] == 0).all() and (w[2, :, 1:] == 0).all()
    torch.testing.assert_close(w[1, :, :2], torch.softmax(scores[1, :, :2], -1))


def test_fully_masked_row_gets_zero_weights_not_nan():
    w = EF.masked_softmax(torch.randn(1, 1, 3), torch.zeros(1, 3, dtype=torch.bool))
    assert torch.equal(w, torch.zeros(1, 1, 3))


def test_masked_softmax_gradcheck():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert gradcheck(lambda s: EF.masked_softmax(s, mask), (_t(2, 2, 3),))
