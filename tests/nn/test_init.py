"""Initialisation schemes: torch default, Xavier, orthogonal, identity (IRNN), forget bias."""

from __future__ import annotations

import math

import pytest
import torch

from elman import nn as enn


def test_torch_init_bounds_and_layer_norm_defaults():
    layer = enn.LayerNormLSTM(10, 16, 2)
    bound = 1 / math.sqrt(16)
    for name, p in layer.named_parameters():
        if "_ln_" in name:
            assert torch.all(p == (0.0 if name.startswith("bias") else 1.0)), name
        else:
            assert p.abs().max() <= bound and p.std() > bound / 4, name


def test_orthogonal_recurrent_blocks_and_zero_bias():
    layer = enn.LSTM(5, 8, init="orthogonal")
    for block in layer.weight_hh_l0.chunk(4, 0):
        torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    assert torch.all(layer.bias_ih_l0 == 0) and torch.all(layer.bias_hh_l0 == 0)


def test_xavier_bounds_per_gate():
    layer = enn.GRU(20, 30, init="xavier")
    bound = math.sqrt(6 / (20 + 30))
    assert layer.weight_ih_l0.abs().max() <= bound
    assert layer.weight_ih_l0.abs().max() > bound * 0.9


def test_identity_init_for_irnn():
    layer = enn.RNN(3, 6, 2, "relu", init="identity")
    for k in (0, 1):
        assert torch.equal(getattr(layer, f"weight_hh_l{k}"), torch.eye(6))
        assert torch.all(getattr(layer, f"bias_hh_l{k}") == 0)
    assert layer.weight_ih_l0.std() < 0.01


def test_forget_bias_sets_the_total_forget_gate_bias():
    layer = enn.LSTM(3, 4, 2, bidirectional=True, forget_bias=1.0)
    for d in ("", "_reverse"):
        total = getattr(layer, f"bias_ih_l1{d}") + getattr(layer, f"bias_hh_l1{d}")
        assert torch.all(total[4:8] == 1.0)
        assert not torch.all(total[:4] == 1.0)
    cell = enn.LSTMCell(3, 4, forget_bias=2.0, init="xavier")
    assert torch.all((cell.bias_ih + cell.bias_hh)[4:8] == 2.0)


def test_reset_parameters_reinitialises():
    layer = enn.LSTM(3, 4, init="orthogonal", forget_bias=1.0)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(7.0)
    layer.reset_parameters()
    assert torch.all((layer.bias_ih_l0 + layer.bias_hh_l0)[4:8] == 1.0)
    assert layer.weight_hh_l0.abs().max() < 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"init": "he"}, "init must be one of"),
        ({"forget_bias": float("nan")}, "forget_bias must be a real number"),
    ],
)
def test_bad_init_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        enn.LSTM(3, 4, **kwargs)


def test_init_options_that_do_not_fit_the_cell():
    with pytest.raises(ValueError, match=r"init='identity'.*needs an RNN mode"):
        enn.LSTM(3, 4, init="identity")
    with pytest.raises(ValueError, match=r"forget_bias.*needs mode LSTM"):
        enn.LSTM(3, 4, bias=False, forget_bias=1.0)
