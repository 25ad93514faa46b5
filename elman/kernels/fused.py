"""Fused path: Elman's compiled time loops with hand-written backpropagation through time.

``csrc/recurrent.cpp`` runs one direction of one layer: per step one GEMM with W_hh and the
gate math in one pass; its backward keeps only ``dgates_t W_hh`` in the loop and forms
dW_hh and db_hh as one GEMM / one sum over all steps afterwards. The input projection (and so
dx, dW_ih, db_ih) stays outside, one GEMM over all steps under autograd.

The extension is compiled when the package is installed (``setup.py``: a portable module and,
on x86-64, an AVX2+FMA twin picked by the CPU at run time), never at run time, so no process
waits on, or locks, a build. Where the installation has no module (no compiler at install
time, or a torch it was not built against) or ``ELMAN_DISABLE_FUSED=1`` is set,
``available()`` is False, one warning says why, and layers run on the other paths.
"""

from __future__ import annotations

import importlib
import os
import warnings
from functools import cache
from types import ModuleType

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

DTYPES = (torch.float32, torch.float64)


@cache
def extension() -> ModuleType | None:
    """The compiled module built with the package for this CPU; None (one warning) if the
    installation has none. Nothing is compiled here: a run never waits on a build."""
    if os.environ.get("ELMAN_DISABLE_FUSED") == "1":
        return None
    simd = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    names = ["_recurrent_avx2", "_recurrent"] if simd else ["_recurrent"]
    errors = []
    for name in names:
        try:
            return importlib.import_module(f"elman.kernels.{name}")
        except ImportError as e:  # not built, or built against another torch
            errors.append(f"{name}: {str(e).strip().splitlines()[0] if str(e).strip() else e}")
    warnings.warn(
        f"elman: the fused recurrent kernels are not installed ({'; '.join(errors)}); layers "
        "use torch's fused op or the reference loop instead. They are compiled when the "
        "package is installed: `pip install --no-build-isolation -e .` with torch and a C++ "
        "compiler present (`make` does this)",
        RuntimeWarning,
        stacklevel=2,
    )
    return None


def available() -> bool:
    """Whether the compiled kernels can run here."""
    return extension() is not None


def fused_blockers(mode: str, layer_norm: bool, proj_size: int, capture: bool) -> list[str]:
    """The preconditions of the fused path that a call fails (empty: it can run)."""
    key, out = kernel_key(mode, layer_norm), []  # messages built only on failure: a hot path
    if key not in KERNELS:
        out.append(f"a fused kernel for {key} (there are: {', '.join(KERNELS)})")
    if proj_size:
        out.append("proj_size=0 (the fused LSTM has no projection)")
    if capture:
        out.append("return_all_states=False (the fused loop keeps outputs and final states)")
    return out


def tensor_blockers(x: Tensor) -> list[str]:
    """What the input's device and dtype rule out."""
    out = []
    if x.device.type != "cpu":
        out.append(f"a CPU tensor (got {x.device.type})")
    if x.dtype not in DTYPES:
        out.append(f"float32 or float64 (got {x.dtype})")
    if not available():
        out.append("the compiled extension (it could not be built here)")
    return out


# kernel key -> (compiled name, state tensors, parameters, extra arguments). The compiled
# functions are NAME_forward(xp, *h0, *params, mask, reverse, *extra, train)
# -> [out, *h_T, *saved] and NAME_backward(d_out, *d_h_T, *saved, *params, mask, reverse,
# *extra) -> [d_xp, *d_h0, *d_params]; a parameter a layer lacks passes as an empty tensor.
PLAIN = ("weight_hh", "bias_hh")
KERNELS = {
    "LSTM": ("lstm", 2, PLAIN, ()),
    "GRU": ("gru", 1, PLAIN, ()),
    "RNN_TANH": ("rnn", 1, PLAIN, (False,)),
    "RNN_RELU": ("rnn", 1, PLAIN, (True,)),
    "LSTM_LN": ("lnlstm", 2, (*PLAIN, "weight_ln_hh", "weight_ln_c", "bias_ln_c"), ()),
    "GRU_LN": ("lngru", 1, (*PLAIN, "weight_ln_hh"), ()),
}


def kernel_key(mode: str, layer_norm: bool) -> str:
    return f"{mode}_LN" if layer_norm else mode


def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0)


def _forward(key, xp, states, params, mask, reverse, train):
    name, n, _, extra = KERNELS[key]
    out, *rest = getattr(extension(), f"{name}_forward")(
        xp, *states, *params, mask, reverse, *extra, train
    )
    return out, tuple(rest[:n]), rest[n:]


class _Loop(torch.autograd.Function):
    """One direction's time loop, forward and hand-written backward, for any kernel."""

    @staticmethod
    def forward(ctx, key, reverse, mask, xp, *tensors):  # type: ignore[override]
        n = KERNELS[key][1]
        states, params = tensors[:n], tensors[n:]
        out, finals, saved = _forward(key, xp, states, params, mask, reverse, True)
        ctx.save_for_backward(*saved, *params, mask)
        ctx.key, ctx.reverse, ctx.shapes = key, reverse, (out.shape, states[0].shape)
        return (out, *finals)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, *g_states):  # type: ignore[override]
        name, n, names, extra = KERNELS[ctx.key]
        *rest, mask = ctx.saved_tensors
        saved, params = rest[: -len(names)], rest[-len(names) :]
        out_shape, state_shape = ctx.shapes
        like = params[0]
        grads = [_dense(g_out, like, out_shape), *(_dense(g, like, state_shape) for g in g_states)]
        dxp, *more = getattr(extension(), f"{name}_backward")(
            *grads, *saved, *params, mask, ctx.reverse, *extra
        )
        dparams = [g if p.numel() else None for g, p in zip(more[n:], params, strict=True)]
        return None, None, None, dxp, *more[:n], *dparams


def _dense(grad: Tensor | None, like: Tensor, shape) -> Tensor:
    """Autograd passes None for outputs that got no gradient: zeros of their shape."""
    return like.new_zeros(shape) if grad is None else grad.contiguous()


def run_direction(
    key: str,
    xp: Tensor,
    state: tuple[Tensor, ...],
    p: dict[str, Tensor],
    mask: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One direction of kernel ``key`` (``kernel_key``) over xp (T, B, G*H) from ``state``:
    outputs (T, B, H) and final state, with ``mask`` (T, B, 1) bool marking real steps."""
    params = [p[name] if name in p else _empty(xp) for name in KERNELS[key][2]]
    m = _empty(xp) if mask is None else mask.squeeze(-1).to(xp.dtype)
    xp, states = xp.contiguous(), tuple(s.contiguous() for s in state)
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (xp, *states, *params))):
        out, finals, _ = _forward(key, xp, states, params, m, reverse, False)
        return out, finals
    out, *finals = _Loop.apply(key, reverse, m, xp, *states, *params)
    return out, tuple(finals)


def cell_step(
    mode: str,
    x: Tensor,
    state: tuple[Tensor, ...],
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
) -> tuple[Tensor, ...]:
    """One step of a plain cell from the raw input ``x`` (B, I), without autograd: the
    streaming path (the caller checked ``step_eligible``)."""
    e = _empty(x)
    c = state[1] if mode == "LSTM" else e
    h, c_new = extension().cell_step(
        mode, x, state[0], c, w_ih, w_hh, e if b_ih is None else b_ih, e if b_hh is None else b_hh
    )
    return (h, c_new) if mode == "LSTM" else (h,)


def step_eligible(mode: str, tensors: tuple[Tensor, ...]) -> bool:
    """Whether ``cell_step`` can take this step: a plain cell, no gradient wanted, and the
    compiled extension running on CPU float tensors."""
    return (
        mode in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
        and not tensor_blockers(tensors[0])
    )


if __name__ == "__main__":  # the README's set-up checks the installed modules here
    print("elman fused kernels:", "installed" if available() else "NOT available (see the warning)")
