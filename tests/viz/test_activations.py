"""Traces reproduce the layer's own states; unit search and saturation count right."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn
from elman.viz.activations import Trace, correlated_units, saturation, trace


def _lstm_recurrence(tr: Trace, layer: int, d: int, lengths: list[int]) -> None:
    g, h, c = tr.gates[layer][d], tr.h[layer][d], tr.c[layer][d]
    for b, n in enumerate(lengths):
        steps = range(n) if d == 0 else range(n - 1, -1, -1)
        c_prev = torch.zeros(c.shape[-1], dtype=c.dtype)
        for t in steps:
            c_t = g["f"][t, b] * c_prev + g["i"][t, b] * g["g"][t, b]
            torch.testing.assert_close(c_t, c[t, b])
            torch.testing.assert_close(g["o"][t, b] * torch.tanh(c_t), h[t, b])
            c_prev = c_t


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_trace_gates_rebuild_the_recorded_states(batch_first):
    torch.manual_seed(0)
    layer = enn.LSTM(3, 5, 2, bidirectional=True, batch_first=batch_first).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)  # (B, T) or (T, B) by batch_first
    lengths = [6, 3, 5, 1] if batch_first else None
    tr = trace(layer, x, lengths)
    full = [6, 3, 5, 1] if batch_first else [4] * 6
    for layer_index in range(2):
        for d in range(2):
            _lstm_recurrence(tr, layer_index, d, full)
    out, _ = layer.eval()(x, lengths=lengths)
    last = torch.cat(tr.h[-1], dim=-1)
    torch.testing.assert_close(last, out.transpose(0, 1) if batch_first else out)
    if lengths:
        assert not tr.mask[3:, 1].any() and tr.mask[:3, 1].all()
        assert (tr.gates[0][1]["i"][3:, 1] == 0).all()  # padding is zeroed


def test_gru_trace_gates_rebuild_h_and_the_unbatched_input_works():
    torch.manual_seed(1)
    layer = enn.GRU(2, 4).double()
    x = torch.randn(7, 2, dtype=torch.float64)
    h0 = torch.randn(1, 4, dtype=torch.float64)
    tr = trace(layer, x, hx=h0)
    g, h = tr.gates[0][0], tr.h[0][0][:, 0]
    prev = h0[0]
    for t in range(7):
        z, n = g["z"][t, 0], g["n"][t, 0]
        torch.testing.assert_close((1 - z) * n + z * prev, h[t])
        prev = h[t]
    assert tr.values("h").shape == (7, 1, 4)
    with pytest.raises(ValueError, match="kind"):
        tr.values("c")
    with pytest.raises(ValueError, match="layer"):
        tr.values("h", layer=3)


def test_layer_norm_and_residual_traces_match_the_outputs():
    torch.manual_seed(2)
    layer = enn.LayerNormLSTM(4, 4, 2, residual=True).double()
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    tr = trace(layer, x)
    out, _ = layer.eval()(x)
    torch.testing.assert_close(tr.h[-1][0] + tr.h[0][0], out)  # layer 1 adds its input
    assert set(tr.gates[1][0]) == {"i", "f", "g", "o"}


def test_rnn_has_no_gates_and_the_trace_restores_training_mode():
    layer = enn.RNN(2, 3)
    tr = trace(layer, torch.randn(4, 1, 2))
    assert tr.gates == [[{}]] and layer.training


def test_correlated_units_finds_the_planted_unit():
    torch.manual_seed(3)
    signal = torch.randn(200)
    values = torch.randn(200, 8)
    values[:, 5] = -2 * signal + 0.01 * torch.randn(200)
    values[:, 2] = 1.0  # constant: r = 0
    top = correlated_units(values, signal, top=3)
    assert top[0][0] == 5 and top[0][1] < -0.99
    assert all(u != 2 for u, _ in top[:2])
    with pytest.raises(ValueError, match="signal: expected one value per step"):
        correlated_units(values, signal[:10])
    with pytest.raises(ValueError, match="constant"):
        correlated_units(values, torch.ones(200))


def test_saturation_shares_count_real_steps_only():
    i = torch.tensor([[[0.05]], [[0.95]], [[0.5]], [[0.99]]])  # (T=4, B=1, H=1)
    g = torch.tensor([[[-0.9]], [[0.0]], [[0.0]], [[0.0]]])
    mask = torch.tensor([[True], [True], [True], [False]])
    tr = Trace("LSTM", [[i]], [[None]], [[{"i": i, "g": g}]], mask)
    s = saturation(tr)[0][0]
    assert s["i"]["left"].item() == pytest.approx(1 / 3)
    assert s["i"]["right"].item() == pytest.approx(1 / 3)  # the 0.99 is padding
    assert s["g"]["left"].item() == pytest.approx(1 / 3)  # tanh -0.9 -> 0.05
    with pytest.raises(ValueError, match="low, high"):
        saturation(tr, 0.9, 0.1)


def test_builtin_signals():
    from elman.tasks.lm.explain import builtin_signal

    q = builtin_signal("quotes", list('a "bc" d'))
    assert q.tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    assert builtin_signal("line-position", list("ab\ncd")).tolist() == [0, 1, 2, 0, 1]
    with pytest.raises(ValueError, match="signal"):
        builtin_signal("vowels", ["a"])
