"""Streaming: a sequence run in chunks, state carried across, equals the whole run."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn

CONFIGS = [
    ("rnn", lambda b: enn.RNN(3, 5, 2, batch_first=True, backend=b)),
    ("irnn", lambda b: enn.RNN(3, 5, 2, "relu", batch_first=True, init="identity", backend=b)),
    ("lstm", lambda b: enn.LSTM(3, 5, 2, batch_first=True, backend=b)),
    ("lstm-proj", lambda b: enn.LSTM(3, 5, 2, batch_first=True, proj_size=2, backend=b)),
    ("gru", lambda b: enn.GRU(3, 5, 3, batch_first=True, backend=b)),
]
REFERENCE_ONLY = [
    ("ln-lstm", lambda: enn.LayerNormLSTM(3, 5, 2, batch_first=True)),
    ("ln-gru", lambda: enn.LayerNormGRU(3, 5, 2, batch_first=True)),
    ("residual-gru", lambda: enn.GRU(3, 6, 3, batch_first=True, residual=True)),
]


def _chunked(layer, x, sizes):
    state, outs, start = None, [], 0
    for size in sizes:
        out, state = layer(x[:, start : start + size], state)
        outs.append(out)
        start += size
    return torch.cat(outs, dim=1), state


def _assert_same(a, b):
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize(("name", "make"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_chunks_equal_whole_sequence(name, make, backend):
    torch.manual_seed(0)
    layer = make(backend).double()
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    whole, whole_state = layer(x)
    chunked, chunk_state = _chunked(layer, x, [1, 4, 2, 5])
    torch.testing.assert_close(chunked, whole)
    _assert_same(chunk_state, whole_state)


@pytest.mark.parametrize(("name", "make"), REFERENCE_ONLY, ids=[c[0] for c in REFERENCE_ONLY])
def test_variants_chunks_equal_whole_sequence(name, make):
    torch.manual_seed(0)
    layer = make().double()
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    whole, whole_state = layer(x)
    chunked, chunk_state = _chunked(layer, x, [3, 1, 8])
    torch.testing.assert_close(chunked, whole)
    _assert_same(chunk_state, whole_state)


def test_cell_stepping_equals_layer():
    torch.manual_seed(0)
    layer = enn.GRU(3, 5)
    cell = enn.GRUCell(3, 5)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = torch.randn(7, 2, 3)
    h = None
    for t in range(7):
        h = cell(x[t], h)
    torch.testing.assert_close(h, layer(x)[1][0])
