"""``RNN``, ``LSTM``, ``GRU`` and their layer-norm variants, with torch.nn's constructors.

Positional arguments are torch's; Elman's extras are keyword-only (see ``RecurrentConfig``):
``weight_dropout`` (DropConnect on W_hh, AWD-LSTM), ``locked_dropout`` (one dropout mask
per sequence between layers), ``residual``, ``init``, ``check_finite``,
``backend``, and for LSTM/GRU ``layer_norm``, for LSTM ``forget_bias``.
"""

from __future__ import annotations

from typing import Any

import torch

from elman.nn.config import RecurrentConfig
from elman.nn.recurrent import Recurrent

Device = torch.device | str | None


class RNN(Recurrent):
    """Elman RNN layer, as ``torch.nn.RNN``; ``nonlinearity`` is "tanh" or "relu"."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        weight_dropout: float = 0.0,
        locked_dropout: bool = False,
        residual: bool = False,
        init: str = "torch",
        check_finite: bool = False,
        backend: str = "auto",
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        config = RecurrentConfig(
            mode=f"RNN_{nonlinearity.upper()}",
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            weight_dropout=weight_dropout,
            locked_dropout=locked_dropout,
            bidirectional=bidirectional,
            residual=residual,
            init=init,
            check_finite=check_finite,
            backend=backend,
        )
        super().__init__(config, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(Recurrent):
    """LSTM layer, as ``torch.nn.LSTM`` (including ``proj_size``); ``layer_norm`` optional."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        weight_dropout: float = 0.0,
        locked_dropout: bool = False,
        layer_norm: bool = False,
        residual: bool = False,
        init: str = "torch",
        forget_bias: float | None = None,
        check_finite: bool = False,
        backend: str = "auto",
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        config = RecurrentConfig(
            mode="LSTM",
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            weight_dropout=weight_dropout,
            locked_dropout=locked_dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            layer_norm=layer_norm,
            residual=residual,
            init=init,
            forget_bias=forget_bias,
            check_finite=check_finite,
            backend=backend,
        )
        super().__init__(config, device=device, dtype=dtype)


class GRU(Recurrent):
    """GRU layer, as ``torch.nn.GRU``; ``layer_norm`` optional."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        weight_dropout: float = 0.0,
        locked_dropout: bool = False,
        layer_norm: bool = False,
        residual: bool = False,
        init: str = "torch",
        check_finite: bool = False,
        backend: str = "auto",
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        config = RecurrentConfig(
            mode="GRU",
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            weight_dropout=weight_dropout,
            locked_dropout=locked_dropout,
            bidirectional=bidirectional,
            layer_norm=layer_norm,
            residual=residual,
            init=init,
            check_finite=check_finite,
            backend=backend,
        )
        super().__init__(config, device=device, dtype=dtype)


class LayerNormLSTM(LSTM):
    """Layer-normalized LSTM (Ba et al. 2016): ``LSTM(*args, layer_norm=True, **kwargs)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, layer_norm=True, **kwargs)


class LayerNormGRU(GRU):
    """Layer-normalized GRU (Ba et al. 2016): ``GRU(*args, layer_norm=True, **kwargs)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, layer_norm=True, **kwargs)


CELLS = ("rnn", "rnn-relu", "lstm", "gru", "ln-lstm", "ln-gru")


def build_recurrent(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    dropout: float = 0.0,
    **kwargs,
) -> Recurrent:
    """A layer by the cell names the CLI and task configs use (``CELLS``); batch-first."""
    kwargs.setdefault("batch_first", True)
    args = (input_size, hidden_size, num_layers)
    if cell in ("rnn", "rnn-relu"):
        return RNN(*args, "relu" if cell == "rnn-relu" else "tanh", dropout=dropout, **kwargs)
    if cell in ("lstm", "ln-lstm"):
        return LSTM(*args, dropout=dropout, layer_norm=cell == "ln-lstm", **kwargs)
    if cell in ("gru", "ln-gru"):
        return GRU(*args, dropout=dropout, layer_norm=cell == "ln-gru", **kwargs)
    raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {cell!r}")
