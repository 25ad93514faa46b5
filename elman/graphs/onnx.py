"""ONNX export of recurrent layers and models, with the recurrent state as explicit graph
inputs and outputs, so a stateless runtime can carry it between calls and stream (``pip install
elman[export]``: onnx, onnxruntime).

Two graphs per layer:
- ``"sequence"``: (x, h_0[, c_0]) -> (y, h_n[, c_n]) over a whole chunk, sequence length and
  batch as dynamic axes. Plain cells hold torch's fused RNN/LSTM/GRU op (ONNX's own RNN, LSTM,
  GRU operators); every other layer (layer norm, residual, projections) an ONNX ``Scan`` over
  time whose body is the reference step (``elman.graphs.scan``).
- ``"step"``: (x_t, h[, c]) -> (y_t, h'[, c']) for one timestep, batch dynamic, built from the
  readable reference step: every cell, layer norm and residual included; unidirectional.

``check`` runs the exported graph in onnxruntime beside PyTorch's reference path and returns
the largest difference, raising when it exceeds the tolerance. The task models' graphs are in
each task package's ``graphs.py``.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from elman.files import atomic_path
from elman.graphs.exporting import OPSET, quiet_native_log
from elman.nn.cellmath import state_sizes
from elman.nn.recurrent import Recurrent

MODES = ("sequence", "step")
NEEDS = "pip install elman[export]"


def _copy(layer: Recurrent, backend: str) -> Recurrent:
    """The same layer (weights shared by value) on ``backend``, in eval mode."""
    clone = Recurrent(replace(layer.config, backend=backend))
    clone.load_state_dict(layer.state_dict())
    return clone.eval()


def fused_exportable(layer: Recurrent) -> bool:
    """Whether torch's exporter can write ``layer`` whole as ONNX's own RNN/LSTM/GRU op."""
    return not layer.native_blockers() and not layer.config.proj_size


def with_backend(model: nn.Module, backend: str) -> nn.Module:
    """A copy of ``model`` whose recurrent layers all run on ``backend``, in eval mode."""
    return _swap(model, lambda name, layer: _copy(layer, backend))[0]


def exportable(model: nn.Module) -> tuple[nn.Module, dict[str, Recurrent]]:
    """A copy of ``model`` (eval mode) whose recurrent layers export whole with dynamic
    length: torch's fused op where it can run them, else a placeholder for a Scan graph;
    and those placeholders' layers by key, for ``write``."""
    from elman.graphs.scan import Placeholder  # here: scan needs the onnx package

    def swap(name: str, layer: Recurrent) -> nn.Module:
        if fused_exportable(layer):
            return _copy(layer, "native")
        return Placeholder(_copy(layer, "reference"), name)

    return _swap(model, swap)


def _swap(model: nn.Module, make) -> tuple[nn.Module, dict[str, Recurrent]]:
    model, placed = copy.deepcopy(model).eval(), {}
    for name, module in list(model.named_modules()):
        if isinstance(module, Recurrent):
            parent, _, attr = name.rpartition(".")
            new = make(name, module)
            setattr(model.get_submodule(parent) if parent else model, attr, new)
            if not isinstance(new, Recurrent):
                placed[name] = new.layer[0]
    return model, placed


# ---- layers ---------------------------------------------------------------------------------
def state_names(layer: Recurrent) -> list[str]:
    return ["h", "c"][: len(state_sizes(layer.config.cell(0)))]


class _Sequence(nn.Module):
    def __init__(self, layer: Recurrent) -> None:
        super().__init__()
        self.layer, self.lstm = layer, layer.config.mode == "LSTM"

    def forward(self, x: Tensor, *state: Tensor):
        y, final = self.layer(x, state if self.lstm else state[0])
        return (y, *final) if self.lstm else (y, final)


class _Step(nn.Module):
    def __init__(self, layer: Recurrent) -> None:
        super().__init__()
        if layer.config.bidirectional:
            raise ValueError(
                "mode: 'step' needs a unidirectional layer (the reverse one reads the future)"
            )
        self.layer = _copy(layer, "reference")

    def forward(self, x: Tensor, *state: Tensor):
        y, new = self.layer.step(x, tuple(state))
        return (y, *new)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")


def example_inputs(
    layer: Recurrent, mode: str, steps: int = 5, batch: int = 2
) -> tuple[Tensor, ...]:
    """Random inputs of the shapes a graph of ``mode`` takes."""
    c = layer.config
    w = layer.weight_ih_l0
    rows = c.num_layers * c.directions
    if mode == "step":
        x = torch.randn(batch, c.input_size, dtype=w.dtype)
    else:
        shape = (batch, steps, c.input_size) if c.batch_first else (steps, batch, c.input_size)
        x = torch.randn(*shape, dtype=w.dtype)
    sizes = state_sizes(c.cell(0))
    return (x, *(torch.randn(rows, batch, n, dtype=w.dtype) for n in sizes))


def io_names(layer: Recurrent) -> tuple[list[str], list[str]]:
    states = state_names(layer)
    return ["x", *(f"{s}0" for s in states)], ["y", *(f"{s}n" for s in states)]


def export(layer: Recurrent, path: str | Path, mode: str = "sequence") -> Path:
    """Write ``layer`` as an ONNX graph of ``mode`` to ``path`` (atomically)."""
    check_mode(mode)
    inputs, outputs = io_names(layer)
    batch_axis = 0 if mode == "step" or layer.config.batch_first else 1
    axes = {"x": {batch_axis: "batch"}} | {n: {1: "batch"} for n in inputs[1:] + outputs[1:]}
    if mode == "sequence":
        time_axis = 1 if layer.config.batch_first else 0
        axes["x"][time_axis] = "steps"
        axes["y"] = {batch_axis: "batch", time_axis: "steps"}
        module, layers = exportable(_Sequence(layer))
    else:
        axes["y"] = {0: "batch"}
        module, layers = _Step(layer), {}
    return write(module, example_inputs(layer, mode), inputs, outputs, axes, path, layers)


def check(
    layer: Recurrent,
    path: str | Path,
    mode: str = "sequence",
    inputs: tuple[Tensor, ...] | None = None,
    tolerance: float = 1e-4,
) -> float:
    """The largest |ONNX - PyTorch| over every output for ``inputs`` (random ones by
    default, of another length and batch than the export's); raises past ``tolerance``."""
    check_mode(mode)
    inputs = inputs if inputs is not None else example_inputs(layer, mode, steps=7, batch=3)
    module = _Sequence(_copy(layer, "reference")) if mode == "sequence" else _Step(layer)
    return compare(module, path, io_names(layer)[0], inputs, tolerance)


# ---- writing and checking -------------------------------------------------------------------
def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"ONNX export needs the onnx package: {NEEDS}") from e
    return onnx


def write(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    axes: dict,
    path: str | Path,
    layers: dict[str, Recurrent] | None = None,
) -> Path:
    """Trace ``module`` on ``inputs`` into an ONNX file at ``path``, atomically; ``layers``:
    the placeholders' layers (``exportable``), whose Scan graphs replace them."""
    onnx = _onnx()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), quiet_native_log():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            module,
            inputs,
            buffer,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the dynamo exporter bakes the traced sequence length in
            custom_opsets={"elman": 1} if layers else None,
        )
    model = onnx.load_from_string(buffer.getvalue())
    _name_outputs(model, output_names)
    if layers:
        from elman.graphs.scan import inline  # here: scan needs the onnx package

        model = inline(model, layers)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return Path(path)


def _name_outputs(model, names: list[str]) -> None:
    """Give constant outputs (weights passed through, which torch folds into initializers
    and names after them) the names asked for, through Identity nodes."""
    from onnx import helper

    for output, name in zip(model.graph.output, names, strict=True):
        if output.name != name:
            model.graph.node.append(helper.make_node("Identity", [output.name], [name]))
            output.name = name


def session(path: str | Path):
    """An onnxruntime session on the CPU for the graph at ``path``."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(f"checking an export needs onnxruntime: {NEEDS}") from e
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(graph, feeds: dict[str, Tensor]) -> list[Tensor]:
    """The outputs of ``graph`` (a session or a path) for ``feeds`` {input name: tensor};
    feeds the graph does not read (torch drops unused inputs) are left out."""
    graph = graph if hasattr(graph, "run") else session(graph)
    wanted = {i.name for i in graph.get_inputs()}
    feed = {
        n: (t.float() if t.is_floating_point() else t).numpy()
        for n, t in feeds.items()
        if n in wanted
    }
    return [torch.from_numpy(o) for o in graph.run(None, feed)]


def compare(
    module: nn.Module,
    path: str | Path,
    names: Sequence[str],
    inputs: Sequence[Tensor],
    tolerance: float,
) -> float:
    """max |ONNX - ``module``| over every output for ``inputs`` (the graph's input ``names``,
    in order); raises ``ValueError`` past ``tolerance``."""
    with torch.no_grad():
        expected = module(*inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = run(path, dict(zip(names, inputs, strict=True)))
    if len(got) != len(expected):
        raise AssertionError(f"{path}: {len(got)} outputs, the module gives {len(expected)}")
    diff = max(
        float((g.double() - e.detach().double()).abs().max()) if e.numel() else 0.0
        for g, e in zip(got, expected, strict=True)
    )
    if not diff <= tolerance:
        raise ValueError(
            f"ONNX export {path}: outputs differ from PyTorch by {diff:.3g} > {tolerance:g}"
        )
    return diff
