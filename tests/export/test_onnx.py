"""ONNX graphs of every layer type equal PyTorch in onnxruntime, state in and out."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn
from elman.export import onnx as ox

pytest.importorskip("onnxruntime")

SEQUENCE = {
    "lstm 2 layers bidirectional": lambda: enn.LSTM(4, 8, 2, bidirectional=True),
    "gru batch-first": lambda: enn.GRU(4, 8, batch_first=True),
    "rnn relu 2 layers": lambda: enn.RNN(4, 8, 2, nonlinearity="relu"),
}
STEP = {
    "layer-norm lstm residual": lambda: enn.LayerNormLSTM(4, 4, 2, residual=True),
    "layer-norm gru": lambda: enn.LayerNormGRU(4, 8),
    "lstm with projections": lambda: enn.LSTM(4, 8, proj_size=3),
    "rnn tanh": lambda: enn.RNN(4, 8),
}


@pytest.mark.parametrize("name", SEQUENCE)
def test_sequence_graphs_match_with_other_lengths_and_batches(tmp_path, name):
    torch.manual_seed(0)
    layer = SEQUENCE[name]().eval()
    path = ox.export(layer, tmp_path / "l.onnx", "sequence")
    assert ox.check(layer, path, "sequence") < 1e-5  # T=7, B=3 where the export saw 5, 2
    assert ox.check(layer, path, "sequence", ox.example_inputs(layer, "sequence", 1, 1)) < 1e-5


@pytest.mark.parametrize("name", STEP)
def test_step_graphs_carry_the_state_like_the_layer(tmp_path, name):
    torch.manual_seed(1)
    layer = STEP[name]().eval()
    path = ox.export(layer, tmp_path / "s.onnx", "step")
    assert ox.check(layer, path, "step") < 1e-5
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path))
    x = torch.randn(6, 2, 4)
    want, state = layer(x)  # the whole sequence, then stepped in the runtime
    state = tuple(torch.zeros_like(s) for s in (state if isinstance(state, tuple) else (state,)))
    names = [i.name for i in session.get_inputs()]
    outs = []
    for t in range(6):
        got = session.run(
            None, dict(zip(names, [x[t].numpy(), *(s.numpy() for s in state)], strict=True))
        )
        outs.append(torch.from_numpy(got[0]))
        state = tuple(torch.from_numpy(g) for g in got[1:])
    torch.testing.assert_close(torch.stack(outs), want.detach(), atol=1e-5, rtol=1e-4)


def test_what_cannot_be_exported_is_named(tmp_path):
    with pytest.raises(ValueError, match="mode='step'"):
        ox.export(enn.LayerNormGRU(4, 8), tmp_path / "x.onnx", "sequence")
    with pytest.raises(ValueError, match="projections"):
        ox.export(enn.LSTM(4, 8, proj_size=3), tmp_path / "x.onnx", "sequence")
    with pytest.raises(ValueError, match="unidirectional"):
        ox.export(enn.GRU(4, 8, bidirectional=True), tmp_path / "x.onnx", "step")
    with pytest.raises(ValueError, match="mode"):
        ox.export(enn.GRU(4, 8), tmp_path / "x.onnx", "whole")
    assert not (tmp_path / "x.onnx").exists()
