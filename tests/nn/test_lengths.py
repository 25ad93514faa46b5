"""Variable lengths: each sequence's result equals running it alone, unpadded."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn

MAKERS = {
    "rnn": lambda b: enn.RNN(3, 4, 2, bidirectional=True, backend=b),
    "lstm": lambda b: enn.LSTM(3, 4, 2, bidirectional=True, backend=b),
    "lstm-proj": lambda b: enn.LSTM(3, 4, 2, bidirectional=True, proj_size=2, backend=b),
    "gru": lambda b: enn.GRU(3, 4, 3, bidirectional=True, backend=b),
    "ln-lstm": lambda b: enn.LayerNormLSTM(3, 4, 2, bidirectional=True, backend=b),
    "ln-gru": lambda b: enn.LayerNormGRU(3, 4, 2, bidirectional=True, backend=b),
    "residual-lstm": lambda b: enn.LSTM(3, 4, 3, bidirectional=True, residual=True, backend=b),
}
CASES = [(n, b) for n in MAKERS for b in ("auto", "reference")]


def _states(s):
    return s if isinstance(s, tuple) else (s,)


@pytest.mark.parametrize(("name", "backend"), CASES)
def test_each_sequence_equals_its_unpadded_run(name, backend):
    torch.manual_seed(0)
    layer = MAKERS[name](backend).double()
    lengths = torch.tensor([6, 2, 5, 1])
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    x = x.masked_fill(torch.arange(6)[:, None, None] >= lengths[None, :, None], 1e3)  # junk pad
    out, state = layer(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = layer(x[:n, b : b + 1])
        torch.testing.assert_close(out[:n, b : b + 1], alone)
        assert (out[n:, b] == 0).all()
        for s, a in zip(_states(state), _states(alone_state), strict=True):
            torch.testing.assert_close(s[:, b : b + 1], a)


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_padding_gets_no_gradient(backend):
    torch.manual_seed(0)
    layer = enn.GRU(3, 4, bidirectional=True, batch_first=True, backend=backend)
    x = torch.randn(2, 5, 3, requires_grad=True)
    out, h = layer(x, lengths=[5, 3])
    (out.sum() + h.sum()).backward()
    assert (x.grad[1, 3:] == 0).all()
    assert (x.grad[1, :3] != 0).any()


def test_lengths_accepts_list_and_tensor_and_full_lengths_match_none():
    layer = enn.LSTM(3, 4, backend="reference")
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(layer(x, lengths=[5, 5])[0], layer(x)[0])
    torch.testing.assert_close(
        layer(x, lengths=torch.tensor([5, 2]))[0], layer(x, lengths=(5, 2))[0]
    )
