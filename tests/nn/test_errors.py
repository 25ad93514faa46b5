"""Bad input raises a ValueError/TypeError that names what came and what was expected."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn


@pytest.fixture
def lstm():
    return enn.LSTM(3, 4, 2)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m(torch.randn(2, 3, 3, 1)), ValueError, r"expected a 3-D tensor.*got a 4-D"),
        (lambda m: m(torch.randn(3)), ValueError, r"got a 1-D tensor of shape \(3,\)"),
        (
            lambda m: m(torch.randn(5, 2, 7)),
            ValueError,
            r"expected size 3 \(input_size\).*\(5, 2, 7\)",
        ),
        (lambda m: m([[1.0, 2.0, 3.0]]), TypeError, "expected a torch.Tensor, got list"),
        (lambda m: m(torch.ones(5, 2, 3, dtype=torch.long)), TypeError, "floating-point"),
        (lambda m: m(torch.randn(5, 2, 3, dtype=torch.float64)), TypeError, "does not match"),
        (lambda m: m(torch.randn(0, 2, 3)), ValueError, "at least one timestep"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=[5]), ValueError, r"expected 2 values"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=[5, 6]), ValueError, r"in 1\.\.5.*\[5, 6\]"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=[0, 2]), ValueError, r"in 1\.\.5"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=[2.5, 1.0]), TypeError, "expected integers"),
        (lambda m: m(torch.randn(5, 3), lengths=[5]), ValueError, "unbatched"),
        (lambda m: m(torch.randn(5, 2, 3), torch.zeros(2, 2, 4)), TypeError, r"tuple \(h_0, c_0\)"),
        (
            lambda m: m(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4))),
            ValueError,
            r"h_0: expected shape \(2, 2, 4\).*got \(1, 2, 4\)",
        ),
        (
            lambda m: m(torch.randn(5, 2, 3), (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4))),
            ValueError,
            r"c_0: expected shape \(2, 2, 4\)",
        ),
    ],
)
def test_layer_input_errors(lstm, call, error, message):
    with pytest.raises(error, match=message):
        call(lstm)


def test_packed_input_with_lengths_is_rejected(lstm):
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(5, 2, 3), [5, 3])
    with pytest.raises(ValueError, match="PackedSequence carries its own lengths"):
        lstm(packed, lengths=[5, 3])


def test_check_finite_reports_nan_position():
    layer = enn.GRU(3, 4, check_finite=True)
    x = torch.randn(5, 2, 3)
    x[3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"contains NaN or inf \(first at index \(3, 1, 2\)"):
        layer(x)
    with pytest.raises(ValueError, match="h_0: contains NaN"):
        layer(torch.randn(5, 2, 3), torch.full((1, 2, 4), float("inf")))
    enn.GRU(3, 4)(x)  # without the check, NaN passes through as in torch.nn


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"hidden_size": 0}, ValueError, "hidden_size must be a positive integer, got 0"),
        ({"hidden_size": 4.0}, ValueError, "hidden_size must be a positive integer, got 4.0"),
        ({"num_layers": True}, ValueError, "num_layers must be a positive integer, got True"),
        ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
        ({"dropout": "0.1"}, ValueError, "dropout must be a number"),
        ({"bidirectional": 1}, TypeError, "bidirectional must be True or False, got 1"),
        ({"backend": "cuda"}, ValueError, "backend must be one of auto, native, fused, reference"),
        ({"proj_size": 4}, ValueError, r"proj_size must be in 1\.\.hidden_size-1=3"),
        ({"proj_size": 2, "layer_norm": True}, ValueError, "proj_size=2 needs a plain LSTM"),
    ],
)
def test_constructor_errors(kwargs, error, message):
    args = {"input_size": 3, "hidden_size": 4} | kwargs
    with pytest.raises(error, match=message):
        enn.LSTM(**args)


def test_other_constructor_errors():
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        enn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="mode must be one of"):
        enn.RecurrentConfig(mode="LSTMP", input_size=3, hidden_size=4)
    with pytest.warns(UserWarning, match="dropout=0.5 with num_layers=1 does nothing"):
        enn.GRU(3, 4, dropout=0.5)


def test_configs_take_keyword_arguments_only():
    with pytest.raises(TypeError, match="positional"):
        enn.RecurrentConfig("LSTM", 3, 4)
    with pytest.raises(TypeError, match="positional"):
        enn.CellConfig("LSTM", 3, 4)
    cell = enn.RecurrentConfig(mode="LSTM", input_size=3, hidden_size=4, num_layers=2).cell(1)
    assert cell == enn.CellConfig(mode="LSTM", input_size=4, hidden_size=4)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c(torch.randn(2, 5)), ValueError, r"expected size 3 \(input_size\)"),
        (lambda c: c(torch.randn(2, 3), torch.zeros(2, 4)), TypeError, r"a tuple \(h, c\)"),
        (
            lambda c: c(torch.randn(2, 3), (torch.zeros(3, 4), torch.zeros(2, 4))),
            ValueError,
            r"hx: expected shape \(2, 4\) = \(batch, state_size\), got \(3, 4\)",
        ),
        (lambda c: c(torch.randn(2, 2, 3)), ValueError, "got a 3-D tensor"),
    ],
)
def test_cell_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(enn.LSTMCell(3, 4))


@pytest.mark.parametrize(
    "kwargs", [{"num_layers": 10**9}, {"hidden_size": 2**70}, {"hidden_size": 10**400}]
)
def test_a_layer_that_cannot_fit_in_memory_is_refused_before_it_is_built(kwargs):
    sizes = {"input_size": 8, "hidden_size": 8} | kwargs
    with pytest.raises(ValueError, match=r"more than this machine's .* GiB of memory"):
        enn.LSTM(**sizes)
