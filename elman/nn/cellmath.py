"""What a cell is made of: its parameter shapes, initial values, input projection and step.

Cells and layers both build on these, so one definition serves ``LSTMCell`` and every
direction of every layer of ``LSTM``. Parameters are passed as a dict keyed by torch's base
names (``weight_ih``, ``bias_hh``, ...); a layer adds its ``_l{k}[_reverse]`` suffix itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from elman.functional.gru import gru_gate_values, gru_step
from elman.functional.layernorm import (
    layer_norm_gru_step,
    layer_norm_lstm_step,
    layer_norm_projection,
)
from elman.functional.lstm import lstm_gates, lstm_step
from elman.functional.rnn import rnn_relu_step, rnn_tanh_step
from elman.kernels import fused
from elman.kernels.native import CELL_OPS, native_cell_step
from elman.nn.config import CellConfig

State = tuple[Tensor, ...]  # (h,) or (h, c); h always first
Step = Callable[[Tensor, State], State]
Params = dict[str, Tensor]
GATE_NAMES = {"LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}


def parameter_shapes(cfg: CellConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes, in torch's flat-weights order (w_ih, w_hh, b_ih, b_hh, w_hr)."""
    gh, h, p = cfg.gates * cfg.hidden_size, cfg.hidden_size, cfg.output_size
    shapes: dict[str, tuple[int, ...]] = {"weight_ih": (gh, cfg.input_size), "weight_hh": (gh, p)}
    if cfg.bias:
        shapes |= {"bias_ih": (gh,), "bias_hh": (gh,)}
    if cfg.proj_size:
        shapes["weight_hr"] = (p, h)
    if cfg.layer_norm:
        shapes |= {"weight_ln_ih": (gh,), "weight_ln_hh": (gh,)}
        if cfg.mode == "LSTM":
            shapes["weight_ln_c"] = (h,)
            if cfg.bias:
                shapes["bias_ln_c"] = (h,)
    return shapes


def state_sizes(cfg: CellConfig) -> tuple[int, ...]:
    """Feature size of each state tensor: (h,) or (h, c)."""
    return (cfg.output_size, cfg.hidden_size) if cfg.mode == "LSTM" else (cfg.output_size,)


def project(cfg: CellConfig, x: Tensor, p: Params) -> Tensor:
    """The state-free part of the pre-activations for any number of timesteps: (..., G*H)."""
    if cfg.layer_norm:
        return layer_norm_projection(x, p["weight_ih"], p["weight_ln_ih"], p.get("bias_ih"))
    return F.linear(x, p["weight_ih"], p.get("bias_ih"))


def recurrent_projection(cfg: CellConfig, h: Tensor, p: Params) -> Tensor:
    """``W_hh h + b_hh`` (``LN(W_hh h; γ_hh) + b_hh`` with layer norm) for any leading dims."""
    if cfg.layer_norm:
        return layer_norm_projection(h, p["weight_hh"], p["weight_ln_hh"], p.get("bias_hh"))
    return F.linear(h, p["weight_hh"], p.get("bias_hh"))


def gate_values(cfg: CellConfig, xp: Tensor, h_prev: Tensor, p: Params) -> dict[str, Tensor]:
    """Each gate's activation (..., H), keyed by ``GATE_NAMES``, from the input projection
    ``xp`` (..., G*H) and the previous output ``h_prev``; vanilla RNNs have none ({})."""
    hp = recurrent_projection(cfg, h_prev, p)
    if cfg.mode == "LSTM":
        return dict(zip(GATE_NAMES["LSTM"], lstm_gates(xp + hp), strict=True))
    if cfg.mode == "GRU":
        return dict(zip(GATE_NAMES["GRU"], gru_gate_values(xp, hp), strict=True))
    return {}


def bind_step(cfg: CellConfig, p: Params) -> Step:
    """The step ``(xp_t, state_{t-1}) -> state_t`` with this cell's parameters bound."""
    w_hh, b_hh = p["weight_hh"], p.get("bias_hh")
    if cfg.mode == "RNN_TANH":
        return lambda xp, s: (rnn_tanh_step(xp, s[0], w_hh, b_hh),)
    if cfg.mode == "RNN_RELU":
        return lambda xp, s: (rnn_relu_step(xp, s[0], w_hh, b_hh),)
    if cfg.mode == "GRU" and cfg.layer_norm:
        ln_hh = p["weight_ln_hh"]
        return lambda xp, s: (layer_norm_gru_step(xp, s[0], w_hh, ln_hh, b_hh),)
    if cfg.mode == "GRU":
        return lambda xp, s: (gru_step(xp, s[0], w_hh, b_hh),)
    if cfg.mode == "LSTM" and cfg.layer_norm:
        ln_hh, ln_c, ln_b = p["weight_ln_hh"], p["weight_ln_c"], p.get("bias_ln_c")
        return lambda xp, s: layer_norm_lstm_step(xp, s, w_hh, ln_hh, ln_c, ln_b, b_hh)  # type: ignore[arg-type,return-value]
    if cfg.mode == "LSTM":
        w_hr = p.get("weight_hr")
        return lambda xp, s: lstm_step(xp, s, w_hh, b_hh, w_hr)  # type: ignore[arg-type]
    raise ValueError(f"unknown mode {cfg.mode!r}")


def single_step(cfg: CellConfig, p: Params, x: Tensor, state: State) -> State:
    """One step from the raw input ``x`` (B, I). Plain cells without autograd (streaming,
    generation) take Elman's compiled step, with autograd torch's fused cell op (one call
    instead of a dozen); other cells the projection and ``bind_step``."""
    if cfg.mode in CELL_OPS and not cfg.layer_norm and not cfg.proj_size:
        w = (p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))
        if fused.step_eligible(cfg.mode, (x, *state, w[0], w[1])):
            return fused.cell_step(cfg.mode, x, state, *w)
        return native_cell_step(cfg.mode, x, state, *w)
    return bind_step(cfg, p)(project(cfg, x, p), state)


def _per_gate(w: Tensor, gates: int, fill: Callable[[Tensor], object]) -> None:
    for block in w.chunk(gates, dim=0):
        fill(block)


@torch.no_grad()
def init_parameters(cfg: CellConfig, p: Params) -> None:
    """Fill ``p`` in place by ``cfg.init``; LN gains start at 1 and LN shifts at 0."""
    if cfg.init == "torch":  # as torch.nn.RNNBase / RNNCellBase.reset_parameters
        bound = 1.0 / math.sqrt(cfg.hidden_size)
        for w in p.values():
            w.uniform_(-bound, bound)
    elif cfg.init in ("xavier", "orthogonal"):
        _per_gate(p["weight_ih"], cfg.gates, torch.nn.init.xavier_uniform_)
        recurrent = (
            torch.nn.init.orthogonal_
            if cfg.init == "orthogonal"
            else (torch.nn.init.xavier_uniform_)
        )
        _per_gate(p["weight_hh"], cfg.gates, recurrent)
        if "weight_hr" in p:
            recurrent(p["weight_hr"])
        for name in ("bias_ih", "bias_hh"):
            if name in p:
                p[name].zero_()
    elif cfg.init == "identity":  # Le, Jaitly & Hinton 2015 (IRNN)
        p["weight_ih"].normal_(0.0, 0.001)
        p["weight_hh"].copy_(torch.eye(cfg.hidden_size))
        for name in ("bias_ih", "bias_hh"):
            if name in p:
                p[name].zero_()
    else:
        raise ValueError(f"unknown init {cfg.init!r}")
    for name in ("weight_ln_ih", "weight_ln_hh", "weight_ln_c"):
        if name in p:
            p[name].fill_(1.0)
    if "bias_ln_c" in p:
        p["bias_ln_c"].zero_()
    if cfg.forget_bias is not None:
        h = cfg.hidden_size
        p["bias_ih"][h : 2 * h].fill_(cfg.forget_bias)  # gate order i, f, g, o
        p["bias_hh"][h : 2 * h].zero_()
