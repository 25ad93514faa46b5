"""Whole-sequence ONNX graphs of any recurrent layer (layer norm, residual, projections,
stacked, bidirectional, variable lengths), time and batch dynamic, built around ONNX ``Scan``.

torch's exporter can only write a layer whole when its fused op can run it; it unrolls every
other time loop into a graph of fixed length. Here each layer and direction becomes one
``Scan`` whose body is one timestep exported by torch from the readable reference step
(``elman.nn.cellmath``), so the math is never written twice:

    body:   (state_{t-1}..., x_t, m_t) -> (state_t..., y_t)
            new = step(project(x_t), state_{t-1})
            state_t = m_t ? new : state_{t-1}        y_t = m_t ? new[0] : 0

with m_t = t < length, as ``elman.nn.loop.run_direction``. The reverse direction scans the
input reversed within each sequence's length (``ReverseSequence``), so it starts at the true
end, and its outputs are reversed back. Layer l > 0 adds its input with ``residual``.

A model holding such a layer is exported by torch with the layer as a placeholder node
(``elman::Recurrent``), which ``inline`` then replaces by the Scan graph.
"""

from __future__ import annotations

import io
import warnings
from contextlib import contextmanager

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import Tensor, nn

from elman.graphs.exporting import OPSET, quiet_native_log
from elman.nn.cellmath import Params, bind_step, project, state_sizes
from elman.nn.config import CellConfig
from elman.nn.recurrent import Recurrent

DOMAIN = "elman"


# ---- the placeholder torch traces ---------------------------------------------------------
@contextmanager
def _untraced():
    """Pause the tracer: the layer runs for real inside the placeholder (so what follows it
    traces with true values), but only the placeholder node may enter the graph. torch has no
    public switch for this; the TorchScript exporter that needs it is itself legacy."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


def _placeholder_op(layer: Recurrent, key: str) -> type[torch.autograd.Function]:
    """An autograd Function that runs ``layer`` and exports as one ``elman::Recurrent``."""
    outputs = 1 + len(state_sizes(layer.config.cell(0)))

    class Op(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: Tensor, lengths: Tensor | None, *state: Tensor):
            hx = None if not state else (state if len(state) == 2 else state[0])
            with _untraced():
                y, final = layer(x, hx, lengths)
            return (y, *(final if isinstance(final, tuple) else (final,)))

        @staticmethod
        def symbolic(g, x, lengths, *state):
            inputs = [x, *([] if lengths is None else [lengths]), *state]
            flags = {"lengths_i": int(lengths is not None), "state_i": int(bool(state))}
            return g.op(f"{DOMAIN}::Recurrent", *inputs, key_s=key, **flags, outputs=outputs)

    return Op


class Placeholder(nn.Module):
    """Stands in for a ``Recurrent`` while a model is exported (same call, same results)."""

    def __init__(self, layer: Recurrent, key: str) -> None:
        super().__init__()
        self.layer = [layer]  # a list: its parameters must not become traced inputs
        self.config, self.key = layer.config, key
        self.op = _placeholder_op(layer, key)

    def forward(self, input: Tensor, hx=None, lengths=None):
        state = () if hx is None else (hx if isinstance(hx, tuple) else (hx,))
        if lengths is not None:
            lengths = torch.as_tensor(lengths)
        y, *final = self.op.apply(input, lengths, *state)
        return y, (tuple(final) if self.config.mode == "LSTM" else final[0])


# ---- one timestep, exported by torch --------------------------------------------------------
class _Body(nn.Module):
    """(state..., x_t (B, I), m_t (B, 1) bool) -> (state'..., y_t): one masked step."""

    def __init__(self, cell: CellConfig, params: Params) -> None:
        super().__init__()
        self.cell, self.names = cell, list(params)
        for name, p in params.items():
            self.register_buffer(name, p.detach().clone())

    def forward(self, *args: Tensor):
        *state, x, m = args
        p = {n: getattr(self, n) for n in self.names}
        new = bind_step(self.cell, p)(project(self.cell, x, p), tuple(state))
        kept = [torch.where(m, n, s) for n, s in zip(new, state, strict=True)]
        return (*kept, torch.where(m, new[0], 0.0))


def _body_graph(cell: CellConfig, params: Params, prefix: str) -> onnx.GraphProto:
    """The Scan body of one layer-direction, every name prefixed (names are global in ONNX)."""
    w = params["weight_ih"]
    sizes = state_sizes(cell)
    state = [torch.zeros(2, n, dtype=w.dtype) for n in sizes]
    inputs = (*state, torch.zeros(2, cell.input_size, dtype=w.dtype), torch.ones(2, 1).bool())
    names = [*(f"s{i}" for i in range(len(sizes))), "x", "m"]
    outs = [*(f"s{i}_new" for i in range(len(sizes))), "y"]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), quiet_native_log():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Body(cell, params).eval(),
            inputs,
            buffer,
            input_names=names,
            output_names=outs,
            dynamic_axes={n: {0: "batch"} for n in names + outs},
            opset_version=OPSET,
            dynamo=False,
        )
    graph = onnx.load_from_string(buffer.getvalue()).graph
    _prefix(graph, prefix)
    return graph


def _prefix(graph: onnx.GraphProto, prefix: str) -> None:
    """Rename every value and node that ``graph`` defines to start with ``prefix``."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {o for n in graph.node for o in n.output if o}
    rename = lambda s: prefix + s if s in defined else s  # noqa: E731
    for v in [*graph.input, *graph.output, *graph.value_info]:
        v.name = rename(v.name)
    for t in graph.initializer:
        t.name = rename(t.name)
    for n in graph.node:
        n.name = prefix + n.name
        n.input[:] = [rename(s) for s in n.input]
        n.output[:] = [rename(s) for s in n.output]
    graph.name = prefix + graph.name


# ---- the layer over time ------------------------------------------------------------------
class _Nodes:
    """Collects nodes and constants under a name prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.nodes, self.constants, self.count = prefix, [], [], 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, value, dtype=np.int64) -> str:
        name = self.fresh("const")
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, outputs: int = 1, names=None, **attrs):
        names = names or [self.fresh(kind) for _ in range(outputs)]
        self.nodes.append(helper.make_node(kind, list(inputs), names, self.fresh(kind), **attrs))
        return names[0] if outputs == 1 else names


def _lengths_and_mask(g: _Nodes, x: str, lengths: str | None) -> tuple[str, str, str]:
    """Lengths (B,) int64 (T each when not given), the mask t < length (T, B, 1) and the
    batch size (1,), for time-major ``x``."""
    shape = g.op("Shape", x)
    steps = g.op("Gather", shape, g.const(0))  # a scalar
    batch = g.op("Slice", shape, g.const([1]), g.const([2]))  # (1,)
    if lengths is None:
        lengths = g.op("Expand", g.op("Unsqueeze", steps, g.const([0])), batch)
    else:
        lengths = g.op("Cast", lengths, to=onnx.TensorProto.INT64)
    t = g.op("Range", g.const(0), steps, g.const(1))
    column = g.op("Unsqueeze", t, g.const([1]))  # (T, 1)
    mask = g.op("Less", column, g.op("Unsqueeze", lengths, g.const([0])))  # (T, B)
    return lengths, g.op("Unsqueeze", mask, g.const([2])), batch


def _zeros(g: _Nodes, layer: Recurrent, batch: str) -> list[str]:
    """Zero initial states (D*L, B, size), B from the value ``batch`` (1,)."""
    c = layer.config
    zero = numpy_helper.from_array(np.zeros(1, dtype=layer.weight_ih_l0.detach().numpy().dtype))
    rows = g.const([c.num_layers * c.directions])
    return [
        g.op("ConstantOfShape", g.op("Concat", rows, batch, g.const([n]), axis=0), value=zero)
        for n in state_sizes(c.cell(0))
    ]


def layer_nodes(
    layer: Recurrent,
    prefix: str,
    x: str,
    lengths: str | None,
    state: list[str] | None,
    outputs: list[str],
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes and constants computing ``layer`` (eval mode) from the values named ``x``
    (the layer's layout), ``lengths`` (B,) or None (all full), ``state`` [h_0[, c_0]] or
    None (zeros), into the values named ``outputs`` [y, h_n[, c_n]]."""
    c, g = layer.config, _Nodes(prefix)
    x = g.op("Transpose", x, perm=[1, 0, 2]) if c.batch_first else x  # (T, B, I)
    lengths, mask, batch = _lengths_and_mask(g, x, lengths)
    sizes = state_sizes(c.cell(0))
    state = state or _zeros(g, layer, batch)
    finals: list[list[str]] = [[] for _ in sizes]
    for layer_index, directions in enumerate(layer.cell_parameters()):
        outs = []
        for d, p in enumerate(directions):
            index = g.const(layer_index * c.directions + d)
            s0 = [g.op("Gather", s, index, axis=0) for s in state]  # (B, size) each
            xs = g.op("ReverseSequence", x, lengths, batch_axis=1, time_axis=0) if d else x
            body = _body_graph(c.cell(layer_index), p, f"{prefix}l{layer_index}d{d}/")
            *ends, y = g.op(
                "Scan", *s0, xs, mask, outputs=len(sizes) + 1, body=body, num_scan_inputs=2
            )
            if d:
                y = g.op("ReverseSequence", y, lengths, batch_axis=1, time_axis=0)
            outs.append(y)
            for final, end in zip(finals, ends, strict=True):
                final.append(g.op("Unsqueeze", end, g.const([0])))
        y = outs[0] if len(outs) == 1 else g.op("Concat", *outs, axis=2)
        x = g.op("Add", y, x) if c.residual and layer_index > 0 else y
    g.op(
        "Transpose" if c.batch_first else "Identity",
        x,
        names=[outputs[0]],
        **({"perm": [1, 0, 2]} if c.batch_first else {}),
    )
    for final, name in zip(finals, outputs[1:], strict=True):
        g.op("Concat", *final, names=[name], axis=0)
    return g.nodes, g.constants


def inline(model: onnx.ModelProto, layers: dict[str, Recurrent]) -> onnx.ModelProto:
    """Replace every ``elman::Recurrent`` placeholder in ``model`` by its layer's graph."""
    graph, nodes = model.graph, []
    for node in graph.node:
        if node.domain != DOMAIN:
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        key, ins = attrs["key"].decode(), list(node.input)
        lengths = ins[1] if attrs["lengths"] else None
        state = ins[1 + attrs["lengths"] :] if attrs["state"] else None
        found, constants = layer_nodes(
            layers[key], f"{key}/", ins[0], lengths, state, list(node.output)
        )
        nodes += found
        graph.initializer.extend(constants)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    return model
