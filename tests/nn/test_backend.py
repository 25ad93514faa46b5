"""Path choice: the fused op where eligible, the reference loop otherwise, errors when forced."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn
from elman.kernels import fused


def test_auto_picks_the_measured_fastest_eligible_path():
    assert enn.LSTM(3, 4, 2, bidirectional=True, dropout=0.1).eval().uses_native()
    assert not enn.LSTM(3, 4).uses_native(return_all_states=True)
    assert enn.LSTM(3, 4).path(return_all_states=True) == "reference"
    assert not enn.LayerNormLSTM(3, 4).uses_native()
    assert not enn.GRU(3, 4, 2, residual=True).uses_native()
    assert not enn.RNN(3, 4, backend="reference").uses_native()
    assert enn.LayerNormGRU(3, 4).native_blockers() == [
        "layer_norm=False (torch has no fused layer-norm RNN)"
    ]


@pytest.mark.kernels
def test_auto_picks_the_compiled_loop_where_it_measured_faster():
    assert enn.GRU(3, 4).path(batch=8) == "fused"
    assert enn.GRU(3, 512).path(batch=128) == "native"  # torch's op wins there
    assert enn.GRU(3, 256).path(batch=64) == "fused"  # B x H = 16384 < 32768
    assert enn.RNN(3, 256).path(batch=128) == "native"  # B x H = 32768
    assert enn.LSTM(3, 4).path(batch=1) == "fused"  # training at B = 1
    assert enn.LSTM(3, 4).path(batch=32) == "native"  # oneDNN, batch-first with dx
    assert enn.LSTM(3, 4).eval().path(batch=32) == "native"
    assert enn.LSTM(3, 4).eval().path(batch=32, steps=1) == "fused"  # a stream's step
    assert enn.LSTM(3, 4, 2, residual=True).path() == "fused"  # native cannot add skips
    assert enn.LayerNormGRU(3, 4).path() == "fused"  # torch has no layer-norm op


def test_without_the_compiled_loop_auto_falls_back_to_torchs_op_or_the_reference(monkeypatch):
    monkeypatch.setattr(fused, "extension", lambda: None)
    assert enn.GRU(3, 4).path(batch=8) == "native"
    assert enn.LSTM(3, 4).path(batch=1) == "native"
    assert enn.LSTM(3, 4, 2, residual=True).path() == "reference"
    assert enn.LayerNormGRU(3, 4).path() == "reference"


@pytest.mark.parametrize(
    "make",
    [
        lambda: enn.LayerNormLSTM(3, 4, backend="native"),
        lambda: enn.GRU(3, 4, 2, residual=True, backend="native"),
    ],
)
def test_forcing_native_where_it_cannot_run_raises_at_construction(make):
    with pytest.raises(ValueError, match="backend='native' cannot run"):
        make()


def test_forcing_native_with_state_capture_raises_at_call():
    layer = enn.LSTM(3, 4, backend="native")
    with pytest.raises(ValueError, match="return_all_states=False"):
        layer(torch.randn(2, 1, 3), return_all_states=True)


def test_native_path_really_runs_the_fused_op():
    layer = enn.LSTM(3, 4)
    with torch.autograd.profiler.profile() as prof:
        layer(torch.randn(5, 2, 3))
    names = {e.name for e in prof.function_events}
    assert any("lstm" in n and "cell" not in n for n in names), names


def test_residual_adds_inputs_from_layer_one():
    torch.manual_seed(0)
    layer = enn.RNN(4, 4, 2, residual=True)
    plain = enn.RNN(4, 4, 2)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(3, 2, 4)
    out = layer(x)[0]
    first = enn.RNN(4, 4)
    first.load_state_dict({k: v for k, v in layer.state_dict().items() if k.endswith("_l0")})
    second = enn.RNN(4, 4)
    second.load_state_dict(
        {k.replace("_l1", "_l0"): v for k, v in layer.state_dict().items() if k.endswith("_l1")}
    )
    y0 = first(x)[0]
    torch.testing.assert_close(out, second(y0)[0] + y0)
    assert not torch.allclose(out, plain(x)[0])


def test_config_round_trip_and_repr():
    layer = enn.GRU(3, 4, 2, batch_first=True, layer_norm=True)
    twin = enn.Recurrent(layer.config)
    assert type(twin.config) is enn.RecurrentConfig and twin.config == layer.config
    assert list(twin.state_dict()) == list(layer.state_dict())
    assert "layer_norm=True" in repr(layer) and "num_layers=2" in repr(layer)
    assert (layer.mode, layer.hidden_size, layer.num_layers, layer.batch_first) == (
        "GRU",
        4,
        2,
        True,
    )
