"""What a recurrent layer computes at every step: outputs, cell states and gates, units that
track a signal, and how often gates saturate (Karpathy, Johnson & Fei-Fei 2015).

``trace`` runs the layer once with ``return_all_states=True`` (the reference loop), then
recomputes each gate from the recorded states with the cell's own equations
(``elman.nn.cellmath.gate_values``), all steps at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from elman.nn.cellmath import gate_values, project
from elman.nn.config import RecurrentConfig
from elman.nn.recurrent import Recurrent

SIGMOID_GATES = {"i", "f", "o", "r", "z"}  # the rest (g, n) are tanh


@dataclass(frozen=True)
class Trace:
    """Per-timestep internals of a layer over one batch, time-major.

    h[l][d]: (T, B, H_out) outputs of layer l, direction d (before residual and dropout);
    c[l][d]: (T, B, H) LSTM cell states, else None; gates[l][d]: name -> (T, B, H) activations
    (LSTM i, f, g, o; GRU r, z, n; none for vanilla RNNs); mask: (T, B), True on real steps.
    Values past a sequence's end are zero.
    """

    mode: str
    h: list[list[Tensor]]
    c: list[list[Tensor | None]]
    gates: list[list[dict[str, Tensor]]]
    mask: Tensor

    def values(self, kind: str, layer: int = -1, direction: int = 0) -> Tensor:
        """``kind`` ("h", "c" or a gate name) of one layer and direction: (T, B, H)."""
        _check_index("layer", layer, len(self.h))
        _check_index("direction", direction, len(self.h[layer]))
        if kind == "h":
            return self.h[layer][direction]
        if kind == "c":
            c = self.c[layer][direction]
            if c is None:
                raise ValueError(f"kind: 'c' needs an LSTM, this layer is {self.mode}")
            return c
        gates = self.gates[layer][direction]
        if kind not in gates:
            raise ValueError(f"kind: expected 'h', 'c' or one of {sorted(gates)}, got {kind!r}")
        return gates[kind]


def _check_index(name: str, value: int, size: int) -> None:
    if not -size <= value < size:
        raise ValueError(f"{name}: expected an index in [{-size}, {size}), got {value}")


def _previous(hs: Tensor, h0: Tensor, lengths: Tensor, reverse: bool) -> Tensor:
    """h_{t-1} at every step t (h_{t+1} for the reverse direction, which starts at each
    sequence's last real step from ``h0``)."""
    if not reverse:
        return torch.cat([h0.unsqueeze(0), hs[:-1]])
    shifted = torch.cat([hs[1:], torch.zeros_like(hs[:1])])
    shifted[lengths - 1, torch.arange(hs.shape[1])] = h0
    return shifted


@torch.no_grad()
def trace(
    layer: Recurrent,
    x: Tensor,
    lengths: Tensor | list[int] | None = None,
    hx: Tensor | tuple[Tensor, Tensor] | None = None,
) -> Trace:
    """Every layer's h, c and gates at every step of input ``x``, as ``layer`` takes it (in
    eval mode: no dropout). The recomputed gates reproduce the recorded states exactly."""
    cfg = layer.config
    was_training = layer.training
    layer.eval()
    try:
        _, _, states = layer(x, hx, lengths, return_all_states=True)
    finally:
        layer.train(was_training)
    h_all, c_all = states.h, states.c  # (L, D, T, B, H), (L, D, B, T, H) or unbatched
    if x.dim() == 2:  # unbatched (T, I): one sequence, time-major whatever batch_first says
        x, h_all = x.unsqueeze(1), h_all.unsqueeze(3)
        c_all = None if c_all is None else c_all.unsqueeze(3)
    elif cfg.batch_first:
        x, h_all = x.transpose(0, 1), h_all.transpose(2, 3)
        c_all = None if c_all is None else c_all.transpose(2, 3)
    steps, batch = x.shape[0], x.shape[1]
    lens = torch.full((batch,), steps) if lengths is None else torch.as_tensor(lengths).cpu()
    mask = torch.arange(steps)[:, None] < lens[None, :]
    h0 = _initial(cfg, hx, batch, h_all)
    hs, cs, gates, inp = [], [], [], x
    for index, directions in enumerate(layer.cell_parameters()):
        cell = cfg.cell(index)
        hs.append([h_all[index, d] for d in range(cfg.directions)])
        cs.append([None if c_all is None else c_all[index, d] for d in range(cfg.directions)])
        gates.append([])
        for d, p in enumerate(directions):
            prev = _previous(hs[-1][d], h0[index * cfg.directions + d], lens, d == 1)
            values = gate_values(cell, project(cell, inp, p), prev, p)
            gates[-1].append({k: v * mask[..., None] for k, v in values.items()})
        y = torch.cat(hs[-1], dim=-1)
        inp = y + inp if cfg.residual and index > 0 else y
    return Trace(cfg.mode, hs, cs, gates, mask)


def _initial(cfg: RecurrentConfig, hx: object, batch: int, like: Tensor) -> Tensor:
    """h_0 (D*L, B, H_out): the given one or zeros."""
    if hx is None:
        return like.new_zeros(cfg.directions * cfg.num_layers, batch, like.shape[-1])
    h0 = hx[0] if isinstance(hx, tuple | list) else hx
    assert isinstance(h0, Tensor)
    return h0.unsqueeze(1) if h0.dim() == 2 else h0


def correlated_units(values: Tensor, signal: Tensor, top: int = 10) -> list[tuple[int, float]]:
    """The ``top`` units whose activation (N, H) best follows ``signal`` (N,), by |Pearson r|:
    [(unit, r), ...], strongest first. Units that never change have r = 0."""
    signal = torch.as_tensor(signal, dtype=values.dtype)
    if values.dim() != 2:
        raise ValueError(f"values: expected (steps, units), got shape {tuple(values.shape)}")
    if signal.shape != (values.shape[0],):
        raise ValueError(
            f"signal: expected one value per step ({values.shape[0]}), got shape "
            f"{tuple(signal.shape)}"
        )
    s = signal - signal.mean()
    if float(s.norm()) == 0.0:
        raise ValueError("signal: it is constant, so nothing can correlate with it")
    v = values - values.mean(0)
    norms = v.norm(dim=0) * s.norm()
    r = torch.where(norms > 0, (v * s[:, None]).sum(0) / norms.clamp_min(1e-30), 0.0)
    order = r.abs().argsort(descending=True)[:top]
    return [(int(u), float(r[u])) for u in order]


def saturation(
    tr: Trace, low: float = 0.1, high: float = 0.9
) -> list[list[dict[str, dict[str, Tensor]]]]:
    """Per layer, direction and gate: the share of real steps each unit spends left-saturated
    (activation < ``low``) and right-saturated (> ``high``), as (H,) tensors under "left" and
    "right". tanh gates (g, n) are rescaled to (0, 1) first, so one pair of thresholds
    serves both. Karpathy et al. 2015 use 0.1 and 0.9."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"low, high: expected 0 <= low < high <= 1, got {low}, {high}")
    real = tr.mask[..., None].float()
    count = real.sum(dim=(0, 1))
    result = []
    for layer in tr.gates:
        result.append([])
        for gates in layer:
            shares = {}
            for name, v in gates.items():
                v01 = v if name in SIGMOID_GATES else (v + 1) / 2
                left = ((v01 < low).float() * real).sum(dim=(0, 1)) / count
                right = ((v01 > high).float() * real).sum(dim=(0, 1)) / count
                shares[name] = {"left": left, "right": right}
            result[-1].append(shares)
    return result


def plot_saturation(
    shares: list[list[dict[str, dict[str, Tensor]]]], path: str | Path, title: str = ""
) -> Path:
    """Karpathy et al.'s saturation plot: per layer (first direction), each unit of each gate
    as a point (share of steps left-saturated, share right-saturated)."""
    from matplotlib.figure import Figure

    from elman.viz.files import save_figure

    layers = len(shares)
    fig = Figure(figsize=(3.6 * layers, 3.4))
    axes = fig.subplots(1, layers, squeeze=False)
    for index, (ax, directions) in enumerate(zip(axes[0], shares, strict=True)):
        for name, s in directions[0].items():
            ax.scatter(s["left"].numpy(), s["right"].numpy(), s=8, alpha=0.6, label=name)
        ax.plot([0, 1], [1, 0], color="grey", linewidth=0.5)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="left-saturated share", title=f"layer {index}")
        if index == 0:
            ax.set_ylabel("right-saturated share")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
