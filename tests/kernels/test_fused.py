"""The compiled path: gradients by gradcheck, realistic float32 sizes against the reference
loop, and the choice of path. Everything still working where they cannot be built is tested
in test_install.py."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn

pytestmark = pytest.mark.kernels  # skipped without the compiled kernels; failed in CI

LAYERS = {
    "RNN_TANH": lambda *a, **k: enn.RNN(*a, **k),
    "RNN_RELU": lambda *a, **k: enn.RNN(*a, nonlinearity="relu", **k),
    "LSTM": enn.LSTM,
    "GRU": enn.GRU,
    "LSTM_LN": enn.LayerNormLSTM,
    "GRU_LN": enn.LayerNormGRU,
}


@pytest.mark.parametrize("mode", list(LAYERS))
@pytest.mark.parametrize("bi", [False, True])
def test_gradcheck_through_every_input_state_and_weight(mode, bi):
    torch.manual_seed(0)
    layer = LAYERS[mode](3, 4, 2, bidirectional=bi, backend="fused").double()
    with torch.no_grad():  # layer-norm gains and shifts away from 1 and 0
        for w in layer.parameters():
            w.add_(0.3 * torch.randn_like(w))
    weights = list(layer.parameters())
    x = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    rows = 4 if bi else 2
    states = [torch.randn(rows, 3, 4, dtype=torch.float64, requires_grad=True)]
    lstm = mode.startswith("LSTM")
    if lstm:
        states.append(torch.randn(rows, 3, 4, dtype=torch.float64, requires_grad=True))
    lengths = torch.tensor([5, 2, 4])

    def run(x, *tensors):
        hx = tuple(tensors[: len(states)])
        names = [n for n, _ in layer.named_parameters()]
        replaced = dict(zip(names, tensors[len(states) :], strict=True))
        out, h = torch.func.functional_call(
            layer, replaced, (x, hx if lstm else hx[0]), {"lengths": lengths}
        )
        return (out, *(h if lstm else (h,)))

    assert torch.autograd.gradcheck(run, (x, *states, *weights))


@pytest.mark.parametrize("mode", list(LAYERS))
def test_float32_at_realistic_size_equals_the_reference(mode):
    torch.manual_seed(0)
    fast = LAYERS[mode](32, 64, 2, bidirectional=True, dropout=0.3, backend="fused")
    slow = LAYERS[mode](32, 64, 2, bidirectional=True, dropout=0.3, backend="reference")
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(48, 8, 32)
    lengths = torch.tensor([48, 30, 12, 48, 1, 7, 40, 25])
    results = []
    for layer in (fast, slow):
        torch.manual_seed(5)  # the same dropout masks between the layers
        out, _ = layer(x, lengths=lengths)
        out.pow(2).sum().backward()
        results.append((out, [p.grad for p in layer.parameters()]))
    (out_f, grads_f), (out_s, grads_s) = results
    torch.testing.assert_close(out_f, out_s, atol=1e-4, rtol=1e-4)  # LN amplifies rounding
    for g_f, g_s in zip(grads_f, grads_s, strict=True):  # float32 sums over 384 steps x rows:
        scale = float(g_s.abs().max())  # both sides are ~5e-5 of it from the float64 values
        torch.testing.assert_close(g_f, g_s, atol=1e-3 * scale, rtol=0)


def test_inference_needs_no_saved_state_and_matches_training_forward():
    torch.manual_seed(0)
    layer = enn.GRU(6, 8, backend="fused")
    x = torch.randn(10, 2, 6)
    train_out, _ = layer(x)
    with torch.no_grad():
        infer_out, _ = layer(x)
    torch.testing.assert_close(train_out.detach(), infer_out)


def test_forced_fused_names_what_it_cannot_run():
    with pytest.raises(ValueError, match=r"backend='fused' cannot run.*proj_size=0"):
        enn.LSTM(3, 4, proj_size=2, backend="fused")
    layer = enn.GRU(3, 4, backend="fused")
    with pytest.raises(ValueError, match="return_all_states=False"):
        layer(torch.randn(2, 1, 3), return_all_states=True)


def test_residual_layers_run_fused_where_the_native_op_cannot():
    layer = enn.GRU(4, 4, 3, residual=True, backend="fused")
    twin = enn.GRU(4, 4, 3, residual=True, backend="reference")
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(6, 2, 4)
    torch.testing.assert_close(layer(x)[0], twin(x)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("strided", [False, True])
def test_compiled_single_step_equals_torchs_cell_op(mode, bias, strided):
    torch.manual_seed(0)
    layer = LAYERS[mode](5, 7, 2, bias=bias).eval()
    x = torch.randn(3, 5)
    state = tuple(torch.randn(2, 3, 7) for _ in range(2 if mode == "LSTM" else 1))
    if strided:  # states as (B, L, H) storage viewed as (L, B, H): rows are not contiguous
        state = tuple(s.transpose(0, 1).contiguous().transpose(0, 1) for s in state)
    with torch.no_grad():
        out, new = layer.step(x, state)  # the compiled step
    with torch.enable_grad():
        want_out, want = layer.step(x.requires_grad_(), state)  # torch's cell op, autograd
    torch.testing.assert_close(out, want_out.detach(), atol=1e-6, rtol=1e-5)
    for a, b in zip(new, want, strict=True):
        torch.testing.assert_close(a, b.detach(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mode", list(LAYERS))
def test_rows_split_over_threads_give_the_same_results(mode):
    torch.manual_seed(0)  # B x gates x H >= 16384: each step's rows run on torch's threads
    fast = LAYERS[mode](16, 64, backend="fused").double()
    slow = LAYERS[mode](16, 64, backend="reference").double()
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(5, 256, 16, dtype=torch.float64)
    lengths = torch.randint(1, 6, (256,))
    grads = []
    for layer in (fast, slow):
        out, _ = layer(x, lengths=lengths)
        out.pow(2).sum().backward()
        grads.append([out, *(p.grad for p in layer.parameters())])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)
