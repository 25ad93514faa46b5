"""Recurrent modules with torch.nn's names and shapes, plus what torch.nn lacks."""

from elman.nn.attention import (
    AdditiveAttention,
    Attention,
    AttentionOutput,
    DotAttention,
    GeneralAttention,
)
from elman.nn.cells import (
    GRUCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    RecurrentCell,
    RNNCell,
)
from elman.nn.config import CellConfig, RecurrentConfig
from elman.nn.dropout import LockedDropout, embedding_dropout
from elman.nn.layers import CELLS, GRU, LSTM, RNN, LayerNormGRU, LayerNormLSTM, build_recurrent
from elman.nn.loop import AllStates
from elman.nn.recurrent import Recurrent

__all__ = [
    "CELLS",
    "GRU",
    "LSTM",
    "RNN",
    "AdditiveAttention",
    "AllStates",
    "Attention",
    "AttentionOutput",
    "CellConfig",
    "DotAttention",
    "GRUCell",
    "GeneralAttention",
    "LSTMCell",
    "LayerNormGRU",
    "LayerNormGRUCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "LockedDropout",
    "RNNCell",
    "Recurrent",
    "RecurrentCell",
    "RecurrentConfig",
    "build_recurrent",
    "embedding_dropout",
]
