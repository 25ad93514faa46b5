"""Recurrent layers: stacked, bidirectional, variable-length, with state in and out.

Parameter names, shapes and call signatures are ``torch.nn.RNN/LSTM/GRU``'s, so state dicts
load both ways and results match. Three paths compute the same function: torch's fused op
(``elman.kernels.native``), Elman's compiled loop with hand-written BPTT
(``elman.kernels.fused``), each where its blockers list finds nothing against it, and the
readable reference loop (``elman.nn.loop``) for everything else. ``backend="auto"`` picks
among the eligible ones by ``elman.kernels.choice``. Weight dropout (DropConnect on W_hh)
is applied to the weights before the paths split (``run_parameters``), so it blocks none.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from elman.kernels import fused
from elman.kernels.choice import choose
from elman.kernels.native import native_blockers, native_forward
from elman.nn import cellmath
from elman.nn.cellmath import Params, State
from elman.nn.config import RecurrentConfig
from elman.nn.dropout import locked_mask
from elman.nn.loop import AllStates, run_layers
from elman.nn.sequence import (
    Sequence,
    pack_like,
    pack_padded,
    prepare_input,
    prepare_state,
    to_time_major,
    unpack_padded,
)


class Recurrent(nn.Module):
    """A recurrent layer built from a ``RecurrentConfig``; ``RNN``/``LSTM``/``GRU`` name it."""

    def __init__(
        self,
        config: RecurrentConfig,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self._names: list[list[dict[str, str]]] = []  # [layer][direction]: base -> full name
        for layer in range(config.num_layers):
            shapes = cellmath.parameter_shapes(config.cell(layer))
            self._names.append([])
            for d in range(config.directions):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                self._names[-1].append({base: base + suffix for base in shapes})
                for base, shape in shapes.items():
                    w = torch.empty(shape, device=device, dtype=dtype)
                    self.register_parameter(base + suffix, nn.Parameter(w))
        self._cells = [config.cell(layer) for layer in range(config.num_layers)]  # frozen
        self._layer_configs = [  # each layer alone, time-major: for locked dropout's split
            replace(
                config,
                input_size=cell.input_size,
                num_layers=1,
                dropout=0.0,
                locked_dropout=False,
                weight_dropout=0.0,
                residual=False,
                batch_first=False,
                check_finite=False,
            )
            for cell in self._cells
        ]
        self.reset_parameters()
        if config.backend in ("native", "fused"):
            self.path()  # raises now if the forced path can never run this layer

    # torch.nn.RNNBase's attributes, so code written against it keeps working.
    mode = property(lambda self: self.config.mode)
    input_size = property(lambda self: self.config.input_size)
    hidden_size = property(lambda self: self.config.hidden_size)
    num_layers = property(lambda self: self.config.num_layers)
    bias = property(lambda self: self.config.bias)
    batch_first = property(lambda self: self.config.batch_first)
    dropout = property(lambda self: self.config.dropout)
    bidirectional = property(lambda self: self.config.bidirectional)
    proj_size = property(lambda self: self.config.proj_size)

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """Parameters per layer and direction, in torch's order."""
        return [[getattr(self, n) for n in d.values()] for layer in self._names for d in layer]

    def flatten_parameters(self) -> None:
        """No-op kept for torch.nn compatibility (weights need no flattening on the CPU)."""

    def cell_parameters(self) -> list[list[Params]]:
        """Per layer and direction, the parameters by torch's base names (``weight_ih``, ...)."""
        return self._params()

    def _params(self) -> list[list[Params]]:
        return [
            [{b: getattr(self, n) for b, n in d.items()} for d in layer] for layer in self._names
        ]

    def run_parameters(self) -> list[list[Params]]:
        """The parameters one call computes with, per layer and direction: in training mode
        with ``weight_dropout`` p > 0, every ``weight_hh`` is replaced by a DropConnect copy
        W_hh' = m * W_hh / (1 - p), m ~ Bernoulli(1 - p), one mask per matrix per call and so
        shared by every step (Merity et al. 2017); otherwise ``cell_parameters()``. Every path
        (torch's op, the compiled loop, the reference loop) takes these, so all of them run;
        gradients reach the parameter through the mask. The parameters are never modified."""
        params, p = self._params(), self.config.weight_dropout
        if p and self.training:
            for directions in params:
                for d in directions:
                    d["weight_hh"] = F.dropout(d["weight_hh"], p, training=True)
        return params

    def reset_parameters(self) -> None:
        """Re-initialise every cell by ``config.init`` (and ``config.forget_bias``)."""
        for layer, directions in enumerate(self._params()):
            for p in directions:
                cellmath.init_parameters(self.config.cell(layer), p)

    def extra_repr(self) -> str:
        c, fields = self.config, RecurrentConfig.__dataclass_fields__
        extras = [f"{c.input_size}, {c.hidden_size}"]
        extras += [
            f"{k}={getattr(c, k)!r}"
            for k in fields
            if k not in ("mode", "input_size", "hidden_size") and getattr(c, k) != fields[k].default
        ]
        return ", ".join(extras)

    def native_blockers(self, capture: bool = False) -> list[str]:
        """Why torch's fused op cannot run this layer (empty when it can)."""
        c = self.config
        return native_blockers(c.mode, c.layer_norm, c.residual, capture)

    def fused_blockers(self, capture: bool = False) -> list[str]:
        """Why Elman's compiled loop cannot run this layer (empty when it can)."""
        c, w = self.config, self.weight_ih_l0
        return fused.fused_blockers(c.mode, c.layer_norm, c.proj_size, capture) + (
            fused.tensor_blockers(w)
        )

    def path(self, return_all_states: bool = False, batch: int = 1, steps: int = 0) -> str:
        """The path a call with these options runs on: "native", "fused" or "reference"
        (``steps``: the call's sequence length, 0 if unknown)."""
        backend = self.config.backend
        if backend in ("native", "fused"):
            blockers = getattr(self, f"{backend}_blockers")(return_all_states)
            if blockers:
                raise ValueError(
                    f"backend={backend!r} cannot run this call; it needs " + "; ".join(blockers)
                )
            return backend
        if backend == "reference":
            return "reference"
        eligible = [
            name
            for name in ("native", "fused")
            if not getattr(self, f"{name}_blockers")(return_all_states)
        ]
        training = self.training and torch.is_grad_enabled()
        return choose(self.config, eligible, batch, training, steps)

    def zero_state(self, batch: int = 1) -> State:
        """The initial state of ``batch`` sequences: zeros (D*L, batch, size) per state tensor."""
        c, like = self.config, self.weight_hh_l0
        sizes = cellmath.state_sizes(self._cells[0])
        return tuple(like.new_zeros(c.directions * c.num_layers, batch, n) for n in sizes)

    def uses_native(self, return_all_states: bool = False) -> bool:
        """Whether a call with these options runs on torch's fused op."""
        return self.path(return_all_states) == "native"

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | list[int] | None = None,
        *,
        return_all_states: bool = False,
    ):
        """Run the layer, as torch.nn.RNN/LSTM/GRU, plus ``lengths`` and state capture.

        input: (T, B, I), or (B, T, I) if batch_first, or (T, I) unbatched, or a PackedSequence.
        hx: h_0 (D*L, B, H_out), or (h_0, c_0) for LSTMs with c_0 (D*L, B, H); zeros if None.
        lengths: true lengths (B,) of a padded batch; padding never affects results, the
            reverse direction starts at each true end, and padded outputs are zero.
        return_all_states: also return ``AllStates`` (every layer's states at every step).
        Returns (output, h_n) or (output, (h_n, c_n)) [, AllStates]; output is (T, B, D*H_out)
        (or (B, T, ...)), a PackedSequence for packed input.
        """
        w = self.weight_ih_l0
        seq = prepare_input(self.config, input, lengths, w.dtype)
        state = prepare_state(self.config, hx, seq, w, cellmath.state_sizes(self._cells[0]))
        path = self.path(return_all_states, seq.batch_size, seq.steps)
        if self._locks_between_layers():
            out, state, captured = self._forward_locked(seq, state, return_all_states, path)
        elif path == "native":
            out, state = self._forward_native(seq, state, self.config, self.run_parameters())
            captured = None
        else:
            c, params = self.config, self.run_parameters()
            out, state, captured = self._forward_loop(
                seq, state, return_all_states, path, c, params
            )
        if seq.unbatched:
            out = out.squeeze(0 if self.config.batch_first else 1)
            state = tuple(s.squeeze(1) for s in state)
            if captured is not None:  # (L, D, T, 1, H) or (L, D, 1, T, H)
                batch_axis = 2 if self.config.batch_first else 3
                captured = AllStates(*(s if s is None else s.squeeze(batch_axis) for s in captured))
        result = (out, state if self.config.mode == "LSTM" else state[0])
        return (*result, captured) if return_all_states else result

    def _locks_between_layers(self) -> bool:
        c = self.config
        return c.locked_dropout and c.dropout > 0 and c.num_layers > 1 and self.training

    def _forward_locked(
        self, seq: Sequence, state: State, capture: bool, path: str
    ) -> tuple[Tensor | PackedSequence, State, AllStates | None]:
        """Training with locked dropout between layers: each layer is one call of ``path``
        on time-major padded data, and its output is multiplied by one mask per sequence
        (``LockedDropout``) before the next layer reads it. Same parameters, same results in
        evaluation (where this split is never taken)."""
        c, params, d = self.config, self.run_parameters(), self.config.directions
        x, lengths = to_time_major(c, seq)
        finals: list[State] = []
        captures: list[AllStates] = []
        for layer in range(c.num_layers):
            lc = self._layer_configs[layer]
            part = tuple(s[layer * d : (layer + 1) * d] for s in state)
            one = Sequence(x, lengths, None, False, seq.batch_size, seq.steps)
            if path == "native":
                y, part = self._forward_native(one, part, lc, params[layer : layer + 1])
            else:
                y, part, got = self._forward_loop(
                    one, part, capture, path, lc, params[layer : layer + 1]
                )
                if got is not None:
                    captures.append(got)
            assert isinstance(y, Tensor)
            if c.residual and layer > 0:
                y = y + x
            if layer < c.num_layers - 1:
                y = y * locked_mask(y, c.dropout)
            x, finals = y, [*finals, part]
        state = tuple(torch.cat([f[i] for f in finals]) for i in range(len(state)))
        captured = None
        if captures:
            cells = [a.c for a in captures]
            captured = AllStates(
                torch.cat([a.h for a in captures]), None if cells[0] is None else torch.cat(cells)
            )
            if c.batch_first:
                captured = AllStates(*(t if t is None else t.transpose(2, 3) for t in captured))
        if seq.packed is not None:
            return pack_like(x, lengths, seq.packed), state, captured
        return (x.transpose(0, 1).contiguous() if c.batch_first else x), state, captured

    def _forward_native(
        self, seq: Sequence, state: State, c: RecurrentConfig, params: list[list[Params]]
    ) -> tuple[Tensor | PackedSequence, State]:
        weights = [w for layer in params for d in layer for w in d.values()]
        packed = seq.packed if seq.lengths is None else pack_padded(c, seq)
        run = dict(
            bias=c.bias,
            num_layers=c.num_layers,
            dropout=c.dropout,
            training=self.training,
            bidirectional=c.bidirectional,
            batch_first=c.batch_first,
        )
        if packed is None:
            assert seq.x is not None
            return native_forward(c.mode, seq.x, state, weights, **run)
        if packed.sorted_indices is not None:  # the fused op wants states in sorted order
            state = tuple(s.index_select(1, packed.sorted_indices) for s in state)
        data, state = native_forward(
            c.mode, packed.data, state, weights, batch_sizes=packed.batch_sizes, **run
        )
        if packed.unsorted_indices is not None:
            state = tuple(s.index_select(1, packed.unsorted_indices) for s in state)
        out = PackedSequence(
            data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
        if seq.packed is not None:
            return out, state
        assert seq.x is not None
        return unpack_padded(c, out, seq.x.shape[1 if c.batch_first else 0]), state

    def _forward_loop(
        self,
        seq: Sequence,
        state: State,
        capture: bool,
        path: str,
        c: RecurrentConfig,
        params: list[list[Params]],
    ) -> tuple[Tensor | PackedSequence, State, AllStates | None]:
        x, lengths = to_time_major(c, seq)
        y, state, captured = run_layers(
            c, params, x, lengths, state, self.training, capture, path == "fused"
        )
        if captured is not None and c.batch_first:
            captured = AllStates(*(s if s is None else s.transpose(2, 3) for s in captured))
        if seq.packed is not None:
            return pack_like(y, lengths, seq.packed), state, captured
        return (y.transpose(0, 1).contiguous() if c.batch_first else y), state, captured

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One timestep through every layer, for decoders, generation and streaming: ``x``
        (B, I) and ``state`` a tuple (h,) or (h, c) of (L, B, size) tensors -> (output
        (B, H_out), new state). Unidirectional layers only; no input checks (callers own the
        shapes), and dropout between layers as in ``forward``. Plain cells run Elman's
        compiled step without autograd and torch's fused cell op (``nn.LSTMCell``'s) with it
        (``backend="reference"``: the readable step); the Python around them is kept to a few
        dict reads, since at B=1 it is a large share of a step. With ``weight_dropout`` in
        training mode each ``step`` call draws a new W_hh mask, whereas ``forward`` shares
        one mask across all the steps of its call; in eval mode steps use W_hh itself."""
        c = self.config
        if c.bidirectional:
            raise ValueError(
                "step() needs a unidirectional layer: the reverse direction reads the future"
            )
        finals: list[list[Tensor]] = [[] for _ in state]
        params = self._parameters  # a dict read: Module.__getattr__ costs µs per name
        for layer, cell in enumerate(self._cells):
            p = {b: params[n] for b, n in self._names[layer][0].items()}
            if c.weight_dropout and self.training:  # a fresh DropConnect mask per call
                p["weight_hh"] = F.dropout(p["weight_hh"], c.weight_dropout, training=True)
            s = tuple([t[layer] for t in state])
            if c.backend == "reference":
                s = cellmath.bind_step(cell, p)(cellmath.project(cell, x, p), s)
            else:
                s = cellmath.single_step(cell, p, x, s)
            for final, part in zip(finals, s, strict=True):
                final.append(part)
            y = s[0] + x if c.residual and layer > 0 else s[0]
            if c.dropout and self.training and layer < c.num_layers - 1:
                y = F.dropout(y, c.dropout, training=True)  # locked or not: one step, one mask
            x = y
        if len(self._cells) == 1:
            return x, tuple([f[0].unsqueeze(0) for f in finals])
        return x, tuple(torch.stack(f) for f in finals)
