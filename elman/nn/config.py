"""Frozen configurations for recurrent cells and layers, validated at construction."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from elman.nn.checks import check_fits_in_memory, check_positive_int

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
INITS = ("torch", "xavier", "orthogonal", "identity")
BACKENDS = ("auto", "native", "fused", "reference")


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _rate(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


@dataclass(frozen=True, kw_only=True)
class CellConfig:
    """One recurrent cell.

    mode: "RNN_TANH", "RNN_RELU", "LSTM" or "GRU" (torch's names).
    input_size, hidden_size: features of x_t and h_t.
    bias: learn b_ih and b_hh (and the cell-state LN shift for layer-norm LSTMs).
    layer_norm: layer-normalized gates and cell state (Ba et al. 2016); LSTM and GRU only.
    proj_size: LSTM projection size (Sak et al. 2014); 0 means none. h_t then has proj_size.
    init: "torch" (uniform ±1/sqrt(H)), "xavier" (Glorot per gate, zero bias), "orthogonal"
        (orthogonal recurrent blocks, Glorot input blocks, zero bias), "identity" (IRNN,
        Le et al. 2015: W_hh = I, W_ih ~ N(0, 0.001²), zero bias; RNN modes only).
    forget_bias: LSTM only; the forget gate's total bias b_if + b_hf after init (1.0 is the
        Gers et al. / Jozefowicz et al. advice). None leaves the init scheme's value.
    """

    mode: str
    input_size: int
    hidden_size: int
    bias: bool = True
    layer_norm: bool = False
    proj_size: int = 0
    init: str = "torch"
    forget_bias: float | None = None

    def __post_init__(self) -> None:
        _choice("mode", self.mode, MODES)
        check_positive_int("input_size", self.input_size)
        check_positive_int("hidden_size", self.hidden_size)
        _flag("bias", self.bias)
        _flag("layer_norm", self.layer_norm)
        _choice("init", self.init, INITS)
        if self.layer_norm and self.mode not in ("LSTM", "GRU"):
            raise ValueError(f"layer_norm=True needs mode LSTM or GRU, got mode={self.mode!r}")
        if isinstance(self.proj_size, bool) or not isinstance(self.proj_size, int):
            raise ValueError(f"proj_size must be an integer, got {self.proj_size!r}")
        if self.proj_size:
            if self.mode != "LSTM" or self.layer_norm:
                raise ValueError(
                    f"proj_size={self.proj_size} needs a plain LSTM (mode LSTM, "
                    f"layer_norm=False), got mode={self.mode!r}, "
                    f"layer_norm={self.layer_norm}"
                )
            if not 0 < self.proj_size < self.hidden_size:
                raise ValueError(
                    f"proj_size must be in 1..hidden_size-1="
                    f"{self.hidden_size - 1} or 0, got {self.proj_size}"
                )
        if self.init == "identity" and self.mode not in ("RNN_TANH", "RNN_RELU"):
            raise ValueError(f"init='identity' (IRNN) needs an RNN mode, got mode={self.mode!r}")
        if self.forget_bias is not None:
            if self.mode != "LSTM" or not self.bias:
                raise ValueError(
                    f"forget_bias={self.forget_bias} needs mode LSTM with bias=True,"
                    f" got mode={self.mode!r}, bias={self.bias}"
                )
            if (
                not isinstance(self.forget_bias, int | float)
                or self.forget_bias != self.forget_bias
            ):
                raise ValueError(f"forget_bias must be a real number, got {self.forget_bias!r}")

    @property
    def gates(self) -> int:
        """G, the number of gate blocks stacked in W_ih and W_hh."""
        return {"LSTM": 4, "GRU": 3}.get(self.mode, 1)

    @property
    def output_size(self) -> int:
        """Size of h_t: proj_size when projecting, else hidden_size."""
        return self.proj_size or self.hidden_size


@dataclass(frozen=True, kw_only=True)
class RecurrentConfig:
    """A (stacked, possibly bidirectional) recurrent layer; cell fields as in ``CellConfig``.

    num_layers: stacked layers; layer l > 0 reads layer l-1's outputs (D * output_size wide).
    batch_first: tensors are (B, T, F) instead of (T, B, F); states stay (D*L, B, H).
    dropout: dropout on each layer's outputs except the last (not on recurrent connections).
    locked_dropout: that dropout draws one mask per sequence and feature, shared by every
        step (variational dropout, Gal & Ghahramani 2016; AWD-LSTM's between-layer dropout),
        instead of one per step. Training then runs the layers one call each.
    weight_dropout: DropConnect rate on every hidden-to-hidden matrix W_hh (Merity et al.
        2017, AWD-LSTM): in training, each call draws one mask per matrix, shared by every
        step, W_hh' = m * W_hh / (1 - p) with m ~ Bernoulli(1 - p); evaluation uses W_hh.
    bidirectional: run a reverse direction too; outputs are concatenated (D = 2).
    residual: add each layer's input to its output for layers l >= 1 (Wu et al. 2016, GNMT).
    check_finite: raise on NaN/inf in the input or initial state (costs one pass over them).
    backend: "auto" (of the paths that can run a call, the one measured fastest for it, see
        ``elman.kernels.choice``), "native" (torch's fused op), "fused" (Elman's compiled loop
        with hand-written BPTT), "reference" (the readable loop, always). "native" and
        "fused" raise where they cannot run.
    """

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    weight_dropout: float = 0.0
    locked_dropout: bool = False
    bidirectional: bool = False
    proj_size: int = 0
    layer_norm: bool = False
    residual: bool = False
    init: str = "torch"
    forget_bias: float | None = None
    check_finite: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        self.cell(0)  # validates every cell field
        check_positive_int("num_layers", self.num_layers)
        for name in ("batch_first", "locked_dropout", "bidirectional", "residual", "check_finite"):
            _flag(name, getattr(self, name))
        _choice("backend", self.backend, BACKENDS)
        for name in ("dropout", "weight_dropout"):
            _rate(name, getattr(self, name))
        c, d, h = self.cell(0), self.directions, self.hidden_size
        later = (self.num_layers - 1) * (d * c.output_size + h)  # inputs of layers 1..L-1
        check_fits_in_memory(  # before anything is allocated (or a billion layers built)
            d * c.gates * h * (self.input_size + h + later),
            f"num_layers={self.num_layers}, hidden_size={h}, input_size={self.input_size}",
        )
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(
                f"dropout={self.dropout} with num_layers=1 does nothing: dropout acts "
                "between stacked layers only",
                stacklevel=3,
            )

    @property
    def directions(self) -> int:
        """D: 2 for bidirectional layers, else 1."""
        return 2 if self.bidirectional else 1

    def cell(self, layer: int) -> CellConfig:
        """The configuration of layer ``layer``'s cells (its input is the previous outputs)."""
        in_size = (
            self.input_size
            if layer == 0
            else self.directions * (self.proj_size or self.hidden_size)
        )
        return CellConfig(
            mode=self.mode,
            input_size=in_size,
            hidden_size=self.hidden_size,
            bias=self.bias,
            layer_norm=self.layer_norm,
            proj_size=self.proj_size,
            init=self.init,
            forget_bias=self.forget_bias,
        )
