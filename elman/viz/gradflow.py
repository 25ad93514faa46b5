"""Gradient flow through time: how much a loss at the last step feels each earlier state.

For a loss L at step T, dL/dh_t = (∂h_{t+1}/∂h_t)^T dL/dh_{t+1}: a product of T - t Jacobians.
In a vanilla RNN each Jacobian is diag(φ'(·)) W_hh, so the norm shrinks or grows
geometrically with the distance (Bengio et al. 1994; Pascanu et al. 2013); the LSTM's
additive cell path and the GRU's update gate let it survive (Hochreiter & Schmidhuber 1997).
For a linear RNN (h_t = W_hh h_{t-1} + x_t), dL/dh_t = (W_hh^T)^(T-t) dL/dh_T exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from elman.nn.cellmath import State, bind_step, project
from elman.nn.recurrent import Recurrent


def gradient_norms(
    step: Callable[[Tensor, State], State],
    xp: Tensor,
    state: State,
    direction: Tensor,
) -> Tensor:
    """Run ``step`` over ``xp`` (T, B, F) from ``state``; with L = <h_T, direction> summed
    over the batch, return the mean over the batch of ||dL/dh_t|| for t = 1..T (T,)."""
    outputs = []
    state = tuple(s.detach().requires_grad_(True) for s in state)  # so every h_t is in the graph
    for x_t in xp.unbind(0):
        state = step(x_t, state)
        state[0].retain_grad()
        outputs.append(state[0])
    if direction.shape != outputs[-1].shape[-1:]:
        raise ValueError(
            f"direction: expected shape ({outputs[-1].shape[-1]},), got {tuple(direction.shape)}"
        )
    (outputs[-1] * direction).sum().backward()
    return torch.stack([h.grad.norm(dim=-1).mean() for h in outputs])  # type: ignore[union-attr]


def layer_gradient_flow(
    layer: Recurrent,
    steps: int = 100,
    batch: int = 16,
    x: Tensor | None = None,
    seed: int = 0,
) -> Tensor:
    """||dL/dh_t|| (mean over a batch) of the first layer of ``layer`` for t = 1..T, with L a
    fixed random unit direction of the last output; inputs ``x`` (T, B, I) or standard
    normals. Index -1 is distance 0. The layer's own weights, no dropout."""
    cfg = layer.config
    if steps < 1 or batch < 1:
        raise ValueError(f"steps, batch: expected positive integers, got {steps}, {batch}")
    gen = torch.Generator().manual_seed(seed)
    p = {k: v.detach().requires_grad_(False) for k, v in layer.cell_parameters()[0][0].items()}
    dtype = p["weight_ih"].dtype
    if x is None:
        x = torch.randn(steps, batch, cfg.input_size, generator=gen, dtype=dtype)
    cell = cfg.cell(0)
    sizes = (cell.output_size, cell.hidden_size) if cfg.mode == "LSTM" else (cell.output_size,)
    state = tuple(torch.zeros(x.shape[1], n, dtype=dtype) for n in sizes)
    direction = torch.randn(cell.output_size, generator=gen, dtype=dtype)
    with torch.enable_grad():
        return gradient_norms(
            bind_step(cell, p), project(cell, x, p), state, direction / direction.norm()
        )


def plot_gradient_flow(curves: dict[str, Tensor], path: str | Path, title: str = "") -> Path:
    """One line per model: ||dL/dh_t|| against the distance T - t, log scale."""
    from matplotlib.figure import Figure

    from elman.viz.files import save_figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for name, norms in curves.items():
        distance = torch.arange(len(norms) - 1, -1, -1)
        shown = norms.detach().double()
        shown[shown <= 0] = float("nan")  # underflowed to zero: the line ends there
        ax.semilogy(distance.numpy(), shown.numpy(), label=name)
    ax.set_xlabel("distance to the loss, T - t (steps)")
    ax.set_ylabel("mean ||dL/dh_t||")
    ax.set_title(title or "Gradient flow through time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
