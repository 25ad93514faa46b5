"""Cells equal torch's cells with copied weights; layer-norm cells equal one step of the layer."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn
from tests.helpers import backward_grads, flat

PAIRS = [
    (lambda: enn.RNNCell(4, 6), lambda: torch.nn.RNNCell(4, 6)),
    (
        lambda: enn.RNNCell(4, 6, nonlinearity="relu"),
        lambda: torch.nn.RNNCell(4, 6, nonlinearity="relu"),
    ),
    (lambda: enn.LSTMCell(4, 6), lambda: torch.nn.LSTMCell(4, 6)),
    (lambda: enn.GRUCell(4, 6), lambda: torch.nn.GRUCell(4, 6)),
    (lambda: enn.GRUCell(4, 6, bias=False), lambda: torch.nn.GRUCell(4, 6, bias=False)),
]


@pytest.mark.parametrize(("make_ours", "make_ref"), PAIRS)
@pytest.mark.parametrize("with_state", [False, True])
def test_cell_matches_torch(make_ours, make_ref, with_state):
    ours, ref = make_ours().double(), make_ref().double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    leaves = [
        torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
        for _ in range(2 if isinstance(ref, torch.nn.LSTMCell) else 1)
    ]
    hx = None if not with_state else (tuple(leaves) if len(leaves) == 2 else leaves[0])
    got, want = flat(ours(x, hx)), flat(ref(x, hx))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
    inputs = [x, *leaves] if with_state else [x]
    for g, w in zip(
        backward_grads(ours, inputs, got), backward_grads(ref, inputs, want), strict=True
    ):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize(("make_ours", "make_ref"), PAIRS)
def test_cell_unbatched_and_state_dict_round_trip(make_ours, make_ref):
    ours, ref = make_ours(), make_ref()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4)
    for g, w in zip(flat(ours(x)), flat(ref(x)), strict=True):
        assert g.shape == w.shape == (6,)
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_layer_norm_cell_is_one_step_of_the_layer(mode):
    torch.manual_seed(0)
    cell = {"LSTM": enn.LayerNormLSTMCell, "GRU": enn.LayerNormGRUCell}[mode](4, 6)
    layer = {"LSTM": enn.LayerNormLSTM, "GRU": enn.LayerNormGRU}[mode](4, 6)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.normal_()  # LN gains start at 1: perturb so the test sees them
            getattr(layer, name + "_l0").copy_(p)
    x = torch.randn(5, 3, 4)
    _, state = layer(x[:1])
    got = flat(cell(x[0]))
    for g, w in zip(got, flat(state), strict=True):
        torch.testing.assert_close(g, w[0])


def test_layer_norm_cell_with_unit_gains_loads_plain_lstm_weights():
    """Plain LSTM weights load into a layer-norm cell (names shared; LN params stay)."""
    plain = torch.nn.LSTMCell(4, 6)
    ln = enn.LayerNormLSTMCell(4, 6)
    missing = ln.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["bias_ln_c", "weight_ln_c", "weight_ln_hh", "weight_ln_ih"]
    torch.testing.assert_close(ln.weight_ih, plain.weight_ih)


def test_cell_step_contract_returns_state_tuple():
    cell = enn.LSTMCell(4, 6)
    h, c = torch.zeros(2, 6), torch.zeros(2, 6)
    out = cell.step(torch.randn(2, 4), (h, c))
    assert isinstance(out, tuple) and len(out) == 2 and out[0].shape == (2, 6)
