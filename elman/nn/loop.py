"""The reference path: a readable time loop over stacked, optionally bidirectional layers.

Every configuration runs here (layer norm, residuals, state capture); the fused path must
match it. The input projection of all timesteps is one matrix product before each loop, and
the loop walks ``xp.unbind(0)``: indexing ``xp[t]`` under autograd makes the backward pass
quadratic in T.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from elman.kernels import fused as fused_kernels
from elman.nn.cellmath import Params, State, Step, bind_step, project
from elman.nn.config import RecurrentConfig


class AllStates(NamedTuple):
    """Per-timestep states of every layer: (L, D, T, B, H), or (L, D, B, T, H) if batch_first.

    ``h`` holds each direction's outputs (before residual and dropout); ``c`` the LSTM cell
    states (None for other cells). Positions past a sequence's end are zero.
    """

    h: Tensor
    c: Tensor | None


def run_direction(
    step: Step, xp: Tensor, state: State, mask: Tensor | None, reverse: bool, capture: bool
) -> tuple[Tensor, State, Tensor | None]:
    """Run ``step`` over xp (T, B, G*H); masked rows keep their state and output zeros.

    With a mask, the reverse direction carries its initial state through the padding, so it
    starts at each sequence's true end. Returns outputs (T, B, H), final state, cells or None.
    """
    xs, ms = xp.unbind(0), (None if mask is None else mask.unbind(0))
    steps = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    hs: list[Tensor] = [xp] * len(xs)
    cs: list[Tensor] | None = [xp] * len(xs) if capture and len(state) == 2 else None
    for t in steps:
        new = step(xs[t], state)
        if ms is None:
            state, out = new, new
        else:
            state = tuple(torch.where(ms[t], n, s) for n, s in zip(new, state, strict=True))
            out = tuple(torch.where(ms[t], n, 0.0) for n in new)
        hs[t] = out[0]
        if cs is not None:
            cs[t] = out[1]
    return torch.stack(hs), state, (None if cs is None else torch.stack(cs))


def run_layers(
    cfg: RecurrentConfig,
    params: list[list[Params]],
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    training: bool,
    capture: bool,
    fused: bool = False,
) -> tuple[Tensor, State, AllStates | None]:
    """All layers over time-major ``x`` (T, B, I) from ``state`` (each (D*L, B, size)).

    Returns outputs (T, B, D*H_out), final states like ``state``, and per-step states if
    ``capture``. Layer l >= 1 adds its input with ``residual``; dropout acts between layers.
    ``fused``: each direction's time loop runs in the compiled kernel (``elman.kernels.fused``,
    whose eligibility the caller checked) instead of this module's loop.
    """
    mask = None
    if lengths is not None:
        steps = torch.arange(x.shape[0], device=x.device)
        mask = (steps[:, None] < lengths.to(x.device)[None, :]).unsqueeze(-1)  # (T, B, 1)
    finals: list[list[Tensor]] = [[] for _ in state]
    hs, cs = [], []
    for layer, directions in enumerate(params):
        cell, outs, cells = cfg.cell(layer), [], []
        for d, p in enumerate(directions):
            s0 = tuple(s[layer * cfg.directions + d] for s in state)
            xp = project(cell, x, p)  # (T, B, G*H)
            if fused:
                key = fused_kernels.kernel_key(cell.mode, cell.layer_norm)
                y, s = fused_kernels.run_direction(key, xp, s0, p, mask, d == 1)
                c = None
            else:
                y, s, c = run_direction(bind_step(cell, p), xp, s0, mask, d == 1, capture)
            outs.append(y)
            cells.append(c)
            for final, part in zip(finals, s, strict=True):
                final.append(part)
        y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        if capture:
            hs.append(torch.stack(outs))
            cs.append(torch.stack(cells) if cells[0] is not None else None)
        if cfg.residual and layer > 0:
            y = y + x
        if cfg.dropout and training and layer < cfg.num_layers - 1:
            y = F.dropout(y, cfg.dropout, training=True)
        x = y
    captured = None
    if capture:
        c_all = torch.stack(cs) if cs[0] is not None else None
        captured = AllStates(torch.stack(hs), c_all)
    return x, tuple(torch.stack(f) for f in finals), captured
