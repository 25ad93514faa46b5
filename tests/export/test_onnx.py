"""ONNX graphs of every layer type equal PyTorch in onnxruntime, state in and out."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn
from elman.graphs import onnx as ox

pytest.importorskip("onnxruntime")

SEQUENCE = {  # torch's fused op inside
    "rnn tanh": lambda: enn.RNN(4, 8),
    "rnn relu 2 layers": lambda: enn.RNN(4, 8, 2, nonlinearity="relu"),
    "lstm": lambda: enn.LSTM(4, 8),
    "gru batch-first": lambda: enn.GRU(4, 8, batch_first=True),
    "lstm 2 layers bidirectional": lambda: enn.LSTM(4, 8, 2, bidirectional=True),
}
SCAN = {  # a Scan over time around the reference step
    "layer-norm lstm": lambda: enn.LayerNormLSTM(4, 8),
    "layer-norm gru": lambda: enn.LayerNormGRU(4, 8),
    "layer-norm lstm 2 layers bidirectional batch-first": lambda: enn.LayerNormLSTM(
        4, 5, 2, bidirectional=True, batch_first=True
    ),
    "layer-norm gru 2 layers bidirectional": lambda: enn.LayerNormGRU(4, 5, 2, bidirectional=True),
    "layer-norm lstm 3 layers residual": lambda: enn.LayerNormLSTM(4, 4, 3, residual=True),
    "lstm with projections, bidirectional": lambda: enn.LSTM(
        4, 8, 2, proj_size=3, bidirectional=True
    ),
}
STEP = {
    "layer-norm lstm residual": lambda: enn.LayerNormLSTM(4, 4, 2, residual=True),
    "layer-norm gru": lambda: enn.LayerNormGRU(4, 8),
    "lstm with projections": lambda: enn.LSTM(4, 8, proj_size=3),
    "rnn tanh": lambda: enn.RNN(4, 8),
}


def _ops(path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("name", [*SEQUENCE, *SCAN])
def test_sequence_graphs_match_with_other_lengths_and_batches(tmp_path, name):
    torch.manual_seed(0)
    layer = {**SEQUENCE, **SCAN}[name]().eval()
    path = ox.export(layer, tmp_path / "l.onnx", "sequence")
    assert ("Scan" in _ops(path)) == (name in SCAN)
    assert ox.check(layer, path, "sequence") < 1e-5  # T=7, B=3 where the export saw 5, 2
    assert ox.check(layer, path, "sequence", ox.example_inputs(layer, "sequence", 1, 1)) < 1e-5
    assert ox.check(layer, path, "sequence", ox.example_inputs(layer, "sequence", 12, 4)) < 1e-5


@pytest.mark.parametrize("name", ["layer-norm gru", "lstm"])
def test_a_sequence_graph_streams_in_chunks_like_the_whole_run(tmp_path, name):
    torch.manual_seed(2)
    layer = {**SEQUENCE, **SCAN}[name]().eval()
    path = ox.export(layer, tmp_path / "l.onnx", "sequence")
    x, *state = ox.example_inputs(layer, "sequence", 9, 2)
    state = [torch.zeros_like(s) for s in state]
    with torch.no_grad():
        want, _ = layer(x)
    session, outs = ox.session(path), []
    for chunk in x.split([4, 1, 4]):  # time-major: chunks of 4, 1 and 4 steps
        y, *state = ox.run(session, dict(zip(["x", "h0", "c0"], [chunk, *state], strict=False)))
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs), want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", STEP)
def test_step_graphs_carry_the_state_like_the_layer(tmp_path, name):
    torch.manual_seed(1)
    layer = STEP[name]().eval()
    path = ox.export(layer, tmp_path / "s.onnx", "step")
    assert ox.check(layer, path, "step") < 1e-5
    session = ox.session(path)
    x = torch.randn(6, 2, 4)
    want, state = layer(x)  # the whole sequence, then stepped in the runtime
    state = tuple(torch.zeros_like(s) for s in (state if isinstance(state, tuple) else (state,)))
    names = [i.name for i in session.get_inputs()]
    outs = []
    for t in range(6):
        got = ox.run(session, dict(zip(names, [x[t], *state], strict=True)))
        outs.append(got[0])
        state = tuple(got[1:])
    torch.testing.assert_close(torch.stack(outs), want.detach(), atol=1e-5, rtol=1e-4)


def test_what_cannot_be_exported_is_named(tmp_path):
    with pytest.raises(ValueError, match="unidirectional"):
        ox.export(enn.GRU(4, 8, bidirectional=True), tmp_path / "x.onnx", "step")
    with pytest.raises(ValueError, match="mode"):
        ox.export(enn.GRU(4, 8), tmp_path / "x.onnx", "whole")
    assert not (tmp_path / "x.onnx").exists()


def test_a_failed_check_names_the_difference(tmp_path):
    layer = enn.GRU(4, 8).eval()
    path = ox.export(layer, tmp_path / "g.onnx")
    other = enn.GRU(4, 8).eval()  # other weights
    with pytest.raises(ValueError, match=r"differ from PyTorch by .* > 0.0001"):
        ox.check(other, path)
