"""Our RNN/LSTM/GRU layers equal torch.nn's with copied weights: outputs, states, gradients."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from elman import nn as enn
from tests.helpers import backward_grads, flat, make_pair, torch_with_lengths

MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
GRID = list(
    itertools.product(
        MODES,
        ["native", "fused", "reference"],
        [False, True],
        [False, True],
        [1, 2, 3],
        [True, False],
        [False, True],
    )
)


def _id(case):
    mode, backend, bf, bi, layers, bias, var = case
    return (
        f"{mode}-{backend}-{'bf' if bf else 'tf'}-{'bi' if bi else 'uni'}-L{layers}-"
        f"{'bias' if bias else 'nobias'}-{'var' if var else 'full'}"
    )


def _case(case: tuple) -> object:
    """A grid case whose fused backend needs the compiled kernels (marked, so CI fails
    without them)."""
    marks = pytest.mark.kernels if case[1] == "fused" else ()
    return pytest.param(case, id=_id(case), marks=marks)


BACKENDS = ["native", pytest.param("fused", marks=pytest.mark.kernels), "reference"]


def _inputs(bf, bi, layers, mode, dtype, batch=3, steps=5, size=4, hidden=6, proj=0):
    torch.manual_seed(2)
    shape = (batch, steps, size) if bf else (steps, batch, size)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    rows = (2 if bi else 1) * layers
    h0 = torch.randn(rows, batch, proj or hidden, dtype=dtype, requires_grad=True)
    if mode != "LSTM":
        return x, h0, [h0]
    c0 = torch.randn(rows, batch, hidden, dtype=dtype, requires_grad=True)
    return x, (h0, c0), [h0, c0]


def _check(ours, ref, x, hx, leaves, lengths, bf, dtype):
    if lengths is None:
        got, got_s = ours(x, hx)
        want, want_s = ref(x, hx)
    else:
        got, got_s = ours(x, hx, lengths=lengths)
        want, want_s = torch_with_lengths(ref, x, hx, lengths, bf)
    tol = TOL[dtype]
    torch.testing.assert_close(got, want, atol=tol, rtol=tol)
    for g, w in zip(flat(got_s), flat(want_s), strict=True):
        torch.testing.assert_close(g, w, atol=tol, rtol=tol)
    grads_ours = backward_grads(ours, [x, *leaves], [got, *flat(got_s)])
    grads_ref = backward_grads(ref, [x, *leaves], [want, *flat(want_s)])
    for g, w in zip(grads_ours, grads_ref, strict=True):
        torch.testing.assert_close(g, w, atol=tol * 10, rtol=tol * 10)


@pytest.mark.parametrize("case", [_case(c) for c in GRID])
def test_layer_matches_torch_float64(case):
    mode, backend, bf, bi, layers, bias, var = case
    dtype = torch.float64
    ours, ref = make_pair(
        mode,
        backend,
        dtype,
        input_size=4,
        hidden_size=6,
        num_layers=layers,
        bias=bias,
        batch_first=bf,
        bidirectional=bi,
    )
    assert ours.uses_native() == (backend == "native")
    x, hx, leaves = _inputs(bf, bi, layers, mode, dtype)
    lengths = torch.tensor([5, 2, 4]) if var else None
    _check(ours, ref, x, hx, leaves, lengths, bf, dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("var", [False, True])
def test_layer_matches_torch_float32(mode, backend, var):
    ours, ref = make_pair(
        mode,
        backend,
        torch.float32,
        input_size=8,
        hidden_size=16,
        num_layers=2,
        batch_first=True,
        bidirectional=True,
    )
    x, hx, leaves = _inputs(
        True, True, 2, mode, torch.float32, batch=4, steps=20, size=8, hidden=16
    )
    lengths = torch.tensor([20, 3, 17, 9]) if var else None
    _check(ours, ref, x, hx, leaves, lengths, True, torch.float32)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("var", [False, True])
def test_lstm_projection_matches_torch(backend, bi, var):
    ours, ref = make_pair(
        "LSTM",
        backend,
        torch.float64,
        input_size=4,
        hidden_size=6,
        num_layers=2,
        proj_size=3,
        bidirectional=bi,
    )
    x, hx, leaves = _inputs(False, bi, 2, "LSTM", torch.float64, proj=3)
    lengths = torch.tensor([5, 1, 3]) if var else None
    _check(ours, ref, x, hx, leaves, lengths, False, torch.float64)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("sort", [True, False])
def test_packed_sequence_matches_torch(mode, backend, sort):
    ours, ref = make_pair(
        mode, backend, torch.float64, input_size=4, hidden_size=6, num_layers=2, bidirectional=True
    )
    x, hx, leaves = _inputs(False, True, 2, mode, torch.float64)
    lengths = torch.tensor([5, 4, 2]) if sort else torch.tensor([2, 5, 4])
    got, got_s = ours(pack_padded_sequence(x, lengths, enforce_sorted=sort), hx)
    want, want_s = ref(pack_padded_sequence(x, lengths, enforce_sorted=sort), hx)
    assert isinstance(got, torch.nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(got.data, want.data)
    torch.testing.assert_close(got.batch_sizes, want.batch_sizes)
    for g, w in zip(flat(got_s), flat(want_s), strict=True):
        torch.testing.assert_close(g, w)
    grads_ours = backward_grads(ours, [x, *leaves], [got.data, *flat(got_s)])
    grads_ref = backward_grads(ref, [x, *leaves], [want.data, *flat(want_s)])
    for g, w in zip(grads_ours, grads_ref, strict=True):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_unbatched_input_matches_torch(mode, backend):
    ours, ref = make_pair(mode, backend, torch.float64, input_size=4, hidden_size=6, num_layers=2)
    x = torch.randn(5, 4, dtype=torch.float64)
    got, got_s = ours(x)
    want, want_s = ref(x)
    torch.testing.assert_close(got, want)
    for g, w in zip(flat(got_s), flat(want_s), strict=True):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("mode", MODES)
def test_state_dict_loads_both_ways(mode):
    ours, ref = make_pair(
        mode, "auto", torch.float32, input_size=3, hidden_size=5, num_layers=2, bidirectional=True
    )
    assert list(ours.state_dict()) == list(ref.state_dict())
    torch.manual_seed(9)
    fresh = type(ref)(
        3,
        5,
        2,
        bidirectional=True,
        **({"nonlinearity": mode[4:].lower()} if mode.startswith("RNN") else {}),
    )
    fresh.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(fresh(x)[0], ours(x)[0])


def test_dropout_acts_between_layers_only():
    torch.manual_seed(0)
    layer = enn.GRU(4, 6, num_layers=2, dropout=0.5, backend="reference").train()
    x = torch.randn(5, 3, 4)
    torch.manual_seed(3)
    got, _ = layer(x)
    first = enn.GRU(4, 6, backend="reference")
    second = enn.GRU(6, 6, backend="reference")
    first.load_state_dict(
        {k.replace("_l0", "_l0"): v for k, v in layer.state_dict().items() if k.endswith("_l0")}
    )
    second.load_state_dict(
        {k.replace("_l1", "_l0"): v for k, v in layer.state_dict().items() if k.endswith("_l1")}
    )
    torch.manual_seed(3)
    want, _ = second(torch.nn.functional.dropout(first(x)[0], 0.5, training=True))
    torch.testing.assert_close(got, want)
    layer.eval()
    assert not torch.allclose(layer(x)[0], got)


def test_native_dropout_matches_torch_in_training():
    ours, ref = make_pair(
        "LSTM", "native", torch.float32, input_size=4, hidden_size=6, num_layers=3, dropout=0.3
    )
    ours.train()
    ref.train()
    x = torch.randn(5, 2, 4)
    torch.manual_seed(5)
    got = ours(x)[0]
    torch.manual_seed(5)
    want = ref(x)[0]
    torch.testing.assert_close(got, want)
