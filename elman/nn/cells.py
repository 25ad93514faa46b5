"""Single-step recurrent cells with torch's parameter names, shapes and call signatures.

Each cell maps ``(x_t, state_{t-1})`` to ``state_t``: ``h_t`` for RNN and GRU cells, ``(h_t, c_t)``
for LSTM cells, exactly as ``torch.nn.RNNCell/LSTMCell/GRUCell`` do, so their ``state_dict``s
load into each other. The math lives in ``elman.functional``; a cell only owns parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from elman.nn import cellmath
from elman.nn.cellmath import State
from elman.nn.checks import check_dtype, check_finite, check_size, check_state, check_tensor
from elman.nn.config import CellConfig


class RecurrentCell(nn.Module):
    """A cell built from a ``CellConfig``; the named subclasses mirror torch's constructors."""

    def __init__(
        self,
        config: CellConfig,
        *,
        check_finite: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.config = config
        self.check_finite = check_finite
        self.input_size, self.hidden_size, self.bias = (
            config.input_size,
            config.hidden_size,
            config.bias,
        )
        for name, shape in cellmath.parameter_shapes(config).items():
            self.register_parameter(
                name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
            )
        self.reset_parameters()

    def _params(self) -> dict[str, Tensor]:
        return dict(self.named_parameters(recurse=False))

    def reset_parameters(self) -> None:
        """Re-initialise by ``config.init`` (and ``config.forget_bias``)."""
        cellmath.init_parameters(self.config, self._params())

    def extra_repr(self) -> str:
        c = self.config
        extras = [f"{c.input_size}, {c.hidden_size}", f"mode={c.mode}"]
        extras += [
            f"{k}={getattr(c, k)}"
            for k in ("bias", "layer_norm", "init")
            if getattr(c, k) != CellConfig.__dataclass_fields__[k].default
        ]
        return ", ".join(extras)

    def step(self, x: Tensor, state: State) -> State:
        """The cell contract without checks: ``x`` (B, I), ``state`` tuple -> new state tuple."""
        return cellmath.single_step(self.config, self._params(), x, state)

    def forward(self, input: Tensor, hx: Tensor | tuple[Tensor, Tensor] | None = None):
        """``input`` (B, I) or (I,); ``hx`` as in torch's cells, zeros if None. Returns state."""
        x = check_tensor("input", input, (1, 2), "(batch, input_size) or (input_size,)")
        check_size("input", x, -1, self.input_size, "input_size")
        w = self.weight_ih
        check_dtype("input", x, w.dtype)
        unbatched = x.dim() == 1
        x = x.unsqueeze(0) if unbatched else x
        state = self._initial_state(hx, x.shape[0], unbatched, x)
        if self.check_finite:
            for name, t in zip(("input", "hx", "cx"), (x, *state), strict=False):
                check_finite(name, t)
        out = self.step(x, state)
        out = tuple(s.squeeze(0) for s in out) if unbatched else out
        return out if self.config.mode == "LSTM" else out[0]

    def _initial_state(self, hx, batch: int, unbatched: bool, x: Tensor) -> State:
        sizes = cellmath.state_sizes(self.config)
        if hx is None:
            return tuple(x.new_zeros(batch, n) for n in sizes)
        parts = hx if isinstance(hx, tuple | list) else (hx,)
        if len(parts) != len(sizes):
            raise TypeError(
                f"hx: expected {'a tuple (h, c)' if len(sizes) == 2 else 'a tensor'}"
                f" for mode {self.config.mode}, got {len(parts)} tensor(s)"
            )
        names = ("hx", "cx")
        out = []
        for name, s, n in zip(names, parts, sizes, strict=False):
            shape = (n,) if unbatched else (batch, n)
            meaning = "(state_size,)" if unbatched else "(batch, state_size)"
            s = check_state(name, s, shape, meaning, x.dtype)
            out.append(s.unsqueeze(0) if unbatched else s)
        return tuple(out)


class _GatedCell(RecurrentCell):
    """Constructor shared by the LSTM/GRU cells and their layer-norm variants."""

    _mode = ""
    _layer_norm = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        init: str = "torch",
        forget_bias: float | None = None,
        check_finite: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        cfg = CellConfig(
            mode=self._mode,
            input_size=input_size,
            hidden_size=hidden_size,
            bias=bias,
            layer_norm=self._layer_norm,
            init=init,
            forget_bias=forget_bias,
        )
        super().__init__(cfg, check_finite=check_finite, device=device, dtype=dtype)


class RNNCell(RecurrentCell):
    """Elman cell, as ``torch.nn.RNNCell(input_size, hidden_size, bias, nonlinearity)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        init: str = "torch",
        check_finite: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        cfg = CellConfig(
            mode=f"RNN_{nonlinearity.upper()}",
            input_size=input_size,
            hidden_size=hidden_size,
            bias=bias,
            init=init,
        )
        super().__init__(cfg, check_finite=check_finite, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTMCell(_GatedCell):
    """LSTM cell, as ``torch.nn.LSTMCell``; ``forward`` returns ``(h, c)``."""

    _mode = "LSTM"


class GRUCell(_GatedCell):
    """GRU cell, as ``torch.nn.GRUCell``; ``forward`` returns ``h``."""

    _mode = "GRU"


class LayerNormLSTMCell(_GatedCell):
    """Layer-normalized LSTM cell (Ba et al. 2016); ``forward`` returns ``(h, c)``."""

    _mode = "LSTM"
    _layer_norm = True


class LayerNormGRUCell(_GatedCell):
    """Layer-normalized GRU cell (Ba et al. 2016); ``forward`` returns ``h``."""

    _mode = "GRU"
    _layer_norm = True
