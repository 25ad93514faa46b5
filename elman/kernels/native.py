"""Fast path: torch's fused recurrent ops (``torch._VF.lstm/gru/rnn_tanh/rnn_relu``).

These are the kernels behind ``torch.nn.LSTM/GRU/RNN`` (oneDNN for float32 LSTM on CPU, cuDNN on
CUDA), so a layer on this path computes exactly what torch.nn computes. They cannot express
layer normalization, residual connections or per-step state capture; ``native_blockers``
lists which preconditions a call fails, and the layer falls back to the reference loop.
"""

from __future__ import annotations

from torch import _VF, Tensor

OPS = {"RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu, "LSTM": _VF.lstm, "GRU": _VF.gru}
CELL_OPS = {
    "RNN_TANH": _VF.rnn_tanh_cell,
    "RNN_RELU": _VF.rnn_relu_cell,
    "LSTM": _VF.lstm_cell,
    "GRU": _VF.gru_cell,
}


def native_blockers(mode: str, layer_norm: bool, residual: bool, capture: bool) -> list[str]:
    """The preconditions of the fused path that this call fails (empty: it can run)."""
    checks = [
        (mode in OPS, f"mode {mode!r} has a fused op (needs one of {', '.join(OPS)})"),
        (not layer_norm, "layer_norm=False (torch has no fused layer-norm RNN)"),
        (not residual, "residual=False (the fused op cannot add skip connections)"),
        (
            not capture,
            "return_all_states=False (the fused op keeps only the last layer's "
            "outputs and the final states)",
        ),
    ]
    return [what for ok, what in checks if not ok]


def native_forward(
    mode: str,
    x: Tensor,
    hx: tuple[Tensor, ...],
    weights: list[Tensor],
    *,
    bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
    batch_first: bool,
    batch_sizes: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run the fused op on padded ``x`` or, with ``batch_sizes``, on packed data.

    ``weights`` is torch's flat list (per layer and direction: w_ih, w_hh[, b_ih, b_hh][, w_hr]);
    ``hx`` is ``(h0,)`` or ``(h0, c0)``, each (D*num_layers, B, H). Returns (output, state tuple).
    """
    op = OPS[mode]
    h = hx if mode == "LSTM" else hx[0]
    flags = (bias, num_layers, dropout, training, bidirectional)
    if batch_sizes is None:
        out = op(x, h, weights, *flags, batch_first)
    else:
        out = op(x, batch_sizes, h, weights, *flags)
    return out[0], tuple(out[1:])


def native_cell_step(
    mode: str,
    x: Tensor,
    state: tuple[Tensor, ...],
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
) -> tuple[Tensor, ...]:
    """One step of torch's fused cell op (the kernel behind ``nn.LSTMCell`` and its kin):
    ``x`` (B, I) and ``state`` (h,) or (h, c) -> the new state tuple."""
    op = CELL_OPS[mode]
    if mode == "LSTM":
        return tuple(op(x, state, w_ih, w_hh, b_ih, b_hh))
    return (op(x, state[0], w_ih, w_hh, b_ih, b_hh),)
