"""Pure step functions of tensors and weights: one equation per line, in the papers' notation."""

from elman.functional.attention import (
    additive_scores,
    dot_scores,
    general_scores,
    lengths_to_mask,
    masked_softmax,
)
from elman.functional.gru import gru_cell, gru_gate_values, gru_step
from elman.functional.layernorm import (
    layer_norm_gru_step,
    layer_norm_lstm_step,
    layer_norm_projection,
)
from elman.functional.lstm import lstm_cell, lstm_gates, lstm_step
from elman.functional.rnn import rnn_relu_cell, rnn_relu_step, rnn_tanh_cell, rnn_tanh_step

__all__ = [
    "additive_scores",
    "dot_scores",
    "general_scores",
    "gru_cell",
    "gru_gate_values",
    "gru_step",
    "layer_norm_gru_step",
    "layer_norm_lstm_step",
    "layer_norm_projection",
    "lengths_to_mask",
    "lstm_cell",
    "lstm_gates",
    "lstm_step",
    "masked_softmax",
    "rnn_relu_cell",
    "rnn_relu_step",
    "rnn_tanh_cell",
    "rnn_tanh_step",
]
