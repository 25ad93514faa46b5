"""Fused path: Elman's compiled time loops with hand-written backpropagation through time.

``csrc/recurrent.cpp`` runs one direction of one layer: per step one GEMM with W_hh and the
gate math in one pass; its backward keeps only ``dgates_t W_hh`` in the loop and forms
dW_hh and db_hh as one GEMM / one sum over all steps afterwards. The input projection (and so
dx, dW_ih, db_ih) stays outside, one GEMM over all steps under autograd.

The extension is compiled with ``torch.utils.cpp_extension`` on first use (or by
``python -m elman.kernels.fused``, which the README's set-up runs) and cached by torch. Where
it cannot be built (no compiler) or ``ELMAN_DISABLE_FUSED=1`` is set, ``available()`` is
False, one warning says why, and layers run on the other paths.
"""

from __future__ import annotations

import os
import shutil
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

SOURCE = Path(__file__).parent / "csrc" / "recurrent.cpp"
MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
DTYPES = (torch.float32, torch.float64)


@cache
def extension() -> ModuleType | None:
    """The compiled module, built on first call; None (with one warning) if it cannot be."""
    if os.environ.get("ELMAN_DISABLE_FUSED") == "1":
        return None
    try:
        from torch.utils.cpp_extension import load

        _find_ninja()
        simd = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
        return load(
            name="elman_recurrent" + ("_avx2" if simd else ""),
            sources=[str(SOURCE)],
            extra_cflags=[
                "-O3",
                "-fno-trapping-math",
                "-fno-math-errno",
                *(["-mavx2", "-mfma"] if simd else []),
            ],
            verbose=False,
        )
    except Exception as e:  # no compiler, no headers, a failed build: all mean "not here"
        warnings.warn(
            f"elman: the fused recurrent kernels could not be built ({type(e).__name__}: "
            f"{str(e).strip().splitlines()[-1] if str(e).strip() else e}); layers use torch's "
            "fused op or the reference loop instead",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def _find_ninja() -> None:
    """torch builds with the ``ninja`` on PATH; the pip package's binary may not be on it
    when the virtual environment is not activated."""
    if shutil.which("ninja") is None:
        try:
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass  # load() then says ninja is missing, and the warning passes it on


def available() -> bool:
    """Whether the compiled kernels can run here."""
    return extension() is not None


def fused_blockers(mode: str, layer_norm: bool, proj_size: int, capture: bool) -> list[str]:
    """The preconditions of the fused path that a call fails (empty: it can run)."""
    checks = [
        (mode in MODES, f"mode {mode!r} has a fused kernel (needs one of {', '.join(MODES)})"),
        (not layer_norm, "layer_norm=False (no fused layer-norm kernel yet)"),
        (proj_size == 0, "proj_size=0 (the fused LSTM has no projection)"),
        (not capture, "return_all_states=False (the fused loop keeps outputs and final states)"),
    ]
    return [what for ok, what in checks if not ok]


def tensor_blockers(x: Tensor) -> list[str]:
    """What the input's device and dtype rule out."""
    checks = [
        (x.device.type == "cpu", f"a CPU tensor (got {x.device.type})"),
        (x.dtype in DTYPES, f"float32 or float64 (got {x.dtype})"),
        (available(), "the compiled extension (it could not be built here)"),
    ]
    return [what for ok, what in checks if not ok]


# mode -> (kernel name, state tensors, extra arguments); the compiled functions are
# NAME_forward(xp, *h0, w_hh, b_hh, mask, reverse, *extra, train) -> [out, *h_T, *saved] and
# NAME_backward(d_out, *d_h_T, *saved, w_hh, mask, reverse, *extra, has_bias)
# -> [d_xp, *d_h0, d_w_hh, d_b_hh].
KERNELS = {
    "LSTM": ("lstm", 2, ()),
    "GRU": ("gru", 1, ()),
    "RNN_TANH": ("rnn", 1, (False,)),
    "RNN_RELU": ("rnn", 1, (True,)),
}


def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0)


def _forward(mode, xp, states, w_hh, b_hh, mask, reverse, train):
    name, n, extra = KERNELS[mode]
    b = _empty(xp) if b_hh is None else b_hh
    out, *rest = getattr(extension(), f"{name}_forward")(
        xp, *states, w_hh, b, mask, reverse, *extra, train
    )
    return out, tuple(rest[:n]), rest[n:]


class _Loop(torch.autograd.Function):
    """One direction's time loop, forward and hand-written backward, for any mode."""

    @staticmethod
    def forward(ctx, mode, reverse, mask, w_hh, b_hh, xp, *states):  # type: ignore[override]
        out, finals, saved = _forward(mode, xp, states, w_hh, b_hh, mask, reverse, True)
        ctx.save_for_backward(*saved, w_hh, mask)
        ctx.mode, ctx.reverse, ctx.has_bias = mode, reverse, b_hh is not None
        ctx.shapes = out.shape, states[0].shape
        return (out, *finals)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, *g_states):  # type: ignore[override]
        name, n, extra = KERNELS[ctx.mode]
        *saved, w_hh, mask = ctx.saved_tensors
        out_shape, state_shape = ctx.shapes
        grads = [_dense(g_out, w_hh, out_shape), *(_dense(g, w_hh, state_shape) for g in g_states)]
        dxp, *rest = getattr(extension(), f"{name}_backward")(
            *grads, *saved, w_hh, mask, ctx.reverse, *extra, ctx.has_bias
        )
        dw, db = rest[n], (rest[n + 1] if ctx.has_bias else None)
        return None, None, None, dw, db, dxp, *rest[:n]


def _dense(grad: Tensor | None, like: Tensor, shape) -> Tensor:
    """Autograd passes None for outputs that got no gradient: zeros of their shape."""
    return like.new_zeros(shape) if grad is None else grad.contiguous()


def run_direction(
    mode: str,
    xp: Tensor,
    state: tuple[Tensor, ...],
    p: dict[str, Tensor],
    mask: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One direction over xp (T, B, G*H) from ``state``: outputs (T, B, H) and final state,
    with ``mask`` (T, B, 1) bool marking real steps (None: all)."""
    w_hh, b_hh = p["weight_hh"], p.get("bias_hh")
    m = _empty(xp) if mask is None else mask.squeeze(-1).to(xp.dtype)
    xp, states = xp.contiguous(), tuple(s.contiguous() for s in state)
    tensors = (xp, *states, w_hh, b_hh)
    if not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)):
        out, finals, _ = _forward(mode, xp, states, w_hh, b_hh, m, reverse, False)
        return out, finals
    out, *finals = _Loop.apply(mode, reverse, m, w_hh, b_hh, xp, *states)
    return out, tuple(finals)


if __name__ == "__main__":  # the README's set-up builds the extension here, once
    print("elman fused kernels:", "built" if available() else "NOT available (see the warning)")
