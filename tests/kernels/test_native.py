"""The fused path, called directly, against the functional step functions."""

from __future__ import annotations

import pytest
import torch

from elman import functional as EF
from elman.kernels import native_blockers, native_forward

STEPS = {
    "RNN_TANH": (1, lambda x, s, w: (EF.rnn_tanh_cell(x, s[0], *w),)),
    "RNN_RELU": (1, lambda x, s, w: (EF.rnn_relu_cell(x, s[0], *w),)),
    "GRU": (3, lambda x, s, w: (EF.gru_cell(x, s[0], *w),)),
    "LSTM": (4, lambda x, s, w: EF.lstm_cell(x, s, *w)),
}


@pytest.mark.parametrize("mode", list(STEPS))
def test_native_forward_equals_functional_loop(mode):
    torch.manual_seed(0)
    gates, step = STEPS[mode]
    t, b, i, h = 6, 2, 3, 4
    weights = [
        torch.randn(gates * h, i, dtype=torch.float64),
        torch.randn(gates * h, h, dtype=torch.float64),
        torch.randn(gates * h, dtype=torch.float64),
        torch.randn(gates * h, dtype=torch.float64),
    ]
    x = torch.randn(t, b, i, dtype=torch.float64)
    state = tuple(
        torch.randn(1, b, h, dtype=torch.float64) for _ in range(2 if mode == "LSTM" else 1)
    )
    out, final = native_forward(
        mode,
        x,
        state,
        weights,
        bias=True,
        num_layers=1,
        dropout=0.0,
        training=False,
        bidirectional=False,
        batch_first=False,
    )
    s = tuple(p[0] for p in state)
    outs = []
    for x_t in x:
        s = step(x_t, s, weights)
        outs.append(s[0])
    torch.testing.assert_close(out, torch.stack(outs))
    for got, want in zip(final, s, strict=True):
        torch.testing.assert_close(got[0], want)


def test_blockers_name_each_failed_precondition():
    assert native_blockers("LSTM", False, False, False) == []
    blockers = native_blockers("LSTM", True, True, True)
    assert len(blockers) == 3
    assert any("layer_norm" in b for b in blockers) and any("residual" in b for b in blockers)
