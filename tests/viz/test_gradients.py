"""Gradient flow equals the analytic powers of W_hh; saliency equals its definitions."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn
from elman.viz.gradflow import gradient_norms, layer_gradient_flow, plot_gradient_flow
from elman.viz.saliency import gradient_times_input, occlusion


def test_linear_rnn_gradients_are_powers_of_w_hh():
    torch.manual_seed(0)
    w = torch.randn(4, 4, dtype=torch.float64) * 0.6
    xp = torch.randn(9, 3, 4, dtype=torch.float64)
    v = torch.randn(4, dtype=torch.float64)
    norms = gradient_norms(lambda x, s: (s[0] @ w.T + x,), xp, (torch.zeros(3, 4).double(),), v)
    for t in range(9):
        expected = torch.linalg.matrix_power(w.T, 8 - t) @ v  # dL/dh_t, the same for each row
        assert norms[t].item() == pytest.approx(expected.norm().item(), rel=1e-10)


def test_relu_rnn_in_its_linear_region_matches_the_analytic_flow():
    layer = enn.RNN(2, 3, nonlinearity="relu").double()
    with torch.no_grad():
        for name, p in layer.named_parameters():
            p.copy_(torch.rand_like(p) * 0.3 + (0.1 if "bias" in name else 0.0))
    x = torch.rand(12, 2, 2, dtype=torch.float64)  # positive everything: relu is the identity
    norms = layer_gradient_flow(layer, x=x, seed=4)
    w = layer.weight_hh_l0.detach()
    direction = torch.randn(3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    direction = direction / direction.norm()
    for t in range(12):
        expected = torch.linalg.matrix_power(w.T, 11 - t) @ direction
        assert norms[t].item() == pytest.approx(expected.norm().item(), rel=1e-9)


def test_an_open_forget_gate_keeps_gradient_a_tanh_rnn_loses(tmp_path):
    torch.manual_seed(0)
    curves = {
        "rnn": layer_gradient_flow(enn.RNN(8, 32), 60),
        "lstm": layer_gradient_flow(enn.LSTM(8, 32, forget_bias=3.0), 60),  # f ~ 0.95
        "gru": layer_gradient_flow(enn.GRU(8, 32), 60),
    }
    assert all(c.shape == (60,) and (c > 0).all() for c in curves.values())
    kept = {k: (c[0] / c[-1]).item() for k, c in curves.items()}  # distance 59 vs 0
    assert kept["lstm"] > 1e-3 > 1e-6 > kept["rnn"]
    pytest.importorskip("matplotlib")
    assert plot_gradient_flow(curves, tmp_path / "flow.png").stat().st_size > 0


def test_saliency_of_a_linear_score_equals_its_definition():
    w = torch.tensor([1.0, -2.0, 0.5])
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [3.0, 1.0, -1.0]])

    def score(batch):
        return (batch * w).sum(dim=(1, 2))

    per_step = x @ w
    torch.testing.assert_close(gradient_times_input(score, x), per_step)
    torch.testing.assert_close(occlusion(score, x), per_step)
    torch.testing.assert_close(occlusion(score, x, torch.ones(3)), per_step - w.sum())
    with pytest.raises(ValueError, match="baseline"):
        occlusion(score, x, torch.ones(2))
    with pytest.raises(ValueError, match="inputs"):
        gradient_times_input(score, x[0])


def test_occlusion_in_chunks_equals_one_batch(monkeypatch):
    from elman.viz import saliency

    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(7, 3, generator=g), torch.randn(3, generator=g)
    seen = []

    def score(batch):
        seen.append(batch.shape[0])
        return torch.tanh(batch @ w).cumsum(1)[:, -1]

    whole = occlusion(score, x)
    monkeypatch.setattr(saliency, "OCCLUSION_CELLS", 14)  # two occluded rows of 7 steps a batch
    seen.clear()
    torch.testing.assert_close(occlusion(score, x), whole)
    assert sorted(seen) == [1, 1, 2, 2, 2]  # the whole input, then rows 0-1, 2-3, 4-5, 6
