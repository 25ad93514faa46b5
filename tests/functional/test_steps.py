"""Step functions: gradcheck in float64, and agreement with torch's own cell functions."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from elman import functional as EF

B, IN, H = 3, 4, 5


def _t(*shape, gates=1):
    shape = tuple(s * gates if k == 0 and len(shape) > 1 else s for k, s in enumerate(shape))
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize(
    ("fn", "gates", "ref"),
    [
        (EF.rnn_tanh_cell, 1, torch.rnn_tanh_cell),
        (EF.rnn_relu_cell, 1, torch.rnn_relu_cell),
        (EF.gru_cell, 3, torch.gru_cell),
    ],
)
def test_single_state_cells_match_torch_and_gradcheck(fn, gates, ref):
    x, h = _t(B, IN), _t(B, H)
    w_ih, w_hh = _t(gates * H, IN), _t(gates * H, H)
    b_ih, b_hh = _t(gates * H), _t(gates * H)
    torch.testing.assert_close(fn(x, h, w_ih, w_hh, b_ih, b_hh), ref(x, h, w_ih, w_hh, b_ih, b_hh))
    assert gradcheck(fn, (x, h, w_ih, w_hh, b_ih, b_hh))
    assert gradcheck(fn, (x, h, w_ih, w_hh))  # without biases


def test_lstm_cell_matches_torch_and_gradcheck():
    x, h, c = _t(B, IN), _t(B, H), _t(B, H)
    w_ih, w_hh, b_ih, b_hh = _t(4 * H, IN), _t(4 * H, H), _t(4 * H), _t(4 * H)
    got = EF.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    want = torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
    assert gradcheck(
        lambda *a: EF.lstm_cell(a[0], (a[1], a[2]), *a[3:]), (x, h, c, w_ih, w_hh, b_ih, b_hh)
    )


def test_lstm_step_with_projection_gradcheck():
    xp, h, c = _t(B, 4 * H), _t(B, 2), _t(B, H)
    w_hh, b_hh, w_hr = _t(4 * H, 2), _t(4 * H), _t(2, H)
    out = EF.lstm_step(xp, (h, c), w_hh, b_hh, w_hr)
    assert out[0].shape == (B, 2) and out[1].shape == (B, H)
    assert gradcheck(
        lambda *a: EF.lstm_step(a[0], (a[1], a[2]), *a[3:]), (xp, h, c, w_hh, b_hh, w_hr)
    )


def test_layer_norm_lstm_step_gradcheck():
    x, h, c = _t(B, IN), _t(B, H), _t(B, H)
    w_ih, w_hh, b_ih, b_hh = _t(4 * H, IN), _t(4 * H, H), _t(4 * H), _t(4 * H)
    g_ih, g_hh, g_c, b_c = _t(4 * H), _t(4 * H), _t(H), _t(H)

    def cell(x, h, c, w_ih, w_hh, b_ih, b_hh, g_ih, g_hh, g_c, b_c):
        xp = EF.layer_norm_projection(x, w_ih, g_ih, b_ih)
        return EF.layer_norm_lstm_step(xp, (h, c), w_hh, g_hh, g_c, b_c, b_hh)

    assert gradcheck(cell, (x, h, c, w_ih, w_hh, b_ih, b_hh, g_ih, g_hh, g_c, b_c))


def test_layer_norm_gru_step_gradcheck():
    x, h = _t(B, IN), _t(B, H)
    w_ih, w_hh, b_ih, b_hh, g_ih, g_hh = (
        _t(3 * H, IN),
        _t(3 * H, H),
        _t(3 * H),
        _t(3 * H),
        _t(3 * H),
        _t(3 * H),
    )

    def cell(x, h, w_ih, w_hh, b_ih, b_hh, g_ih, g_hh):
        xp = EF.layer_norm_projection(x, w_ih, g_ih, b_ih)
        return EF.layer_norm_gru_step(xp, h, w_hh, g_hh, b_hh)

    assert gradcheck(cell, (x, h, w_ih, w_hh, b_ih, b_hh, g_ih, g_hh))


def test_layer_norm_lstm_follows_the_equations():
    """Written out by hand from Ba et al. (2016): each LN normalizes over all 4H gates."""
    x, h, c = _t(B, IN), _t(B, H), _t(B, H)
    w_ih, w_hh, b_ih, b_hh = _t(4 * H, IN), _t(4 * H, H), _t(4 * H), _t(4 * H)
    g_ih, g_hh, g_c, b_c = _t(4 * H), _t(4 * H), _t(H), _t(H)

    def ln(a, g, b=0.0):
        mu, var = a.mean(-1, keepdim=True), a.var(-1, unbiased=False, keepdim=True)
        return g * (a - mu) / torch.sqrt(var + 1e-5) + b

    gates = ln(x @ w_ih.T, g_ih) + b_ih + ln(h @ w_hh.T, g_hh) + b_hh
    i, f, g, o = gates.chunk(4, -1)
    c_want = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_want = torch.sigmoid(o) * torch.tanh(ln(c_want, g_c, b_c))
    xp = EF.layer_norm_projection(x, w_ih, g_ih, b_ih)
    h_got, c_got = EF.layer_norm_lstm_step(xp, (h, c), w_hh, g_hh, g_c, b_c, b_hh)
    torch.testing.assert_close(h_got, h_want)
    torch.testing.assert_close(c_got, c_want)


def test_layer_norm_gru_is_torch_gru_convention_on_normalized_projections():
    """With LN applied, the gates follow torch's GRU (reset gate after the recurrent product)."""
    x, h = _t(B, IN), _t(B, H)
    w_ih, w_hh, b_ih, b_hh, g_ih, g_hh = (
        _t(3 * H, IN),
        _t(3 * H, H),
        _t(3 * H),
        _t(3 * H),
        _t(3 * H),
        _t(3 * H),
    )
    norm = torch.nn.functional.layer_norm
    xr, xz, xn = (norm(x @ w_ih.T, (3 * H,), g_ih) + b_ih).chunk(3, -1)
    hr, hz, hn = (norm(h @ w_hh.T, (3 * H,), g_hh) + b_hh).chunk(3, -1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    want = (1 - z) * torch.tanh(xn + r * hn) + z * h
    xp = EF.layer_norm_projection(x, w_ih, g_ih, b_ih)
    torch.testing.assert_close(EF.layer_norm_gru_step(xp, h, w_hh, g_hh, b_hh), want)
