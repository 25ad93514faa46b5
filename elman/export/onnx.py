"""ONNX export of recurrent layers, with the recurrent state as explicit graph inputs and
outputs, so a stateless runtime can carry it between calls and stream (``pip install
elman[export]``: onnx, onnxruntime).

Two graphs per layer:
- ``"sequence"``: (x, h_0[, c_0]) -> (y, h_n[, c_n]) over a whole chunk, sequence length and
  batch as dynamic axes. It holds torch's fused RNN/LSTM/GRU op (ONNX's own RNN, LSTM, GRU
  operators), so it takes the layers that op can run: not layer norm, not residual.
- ``"step"``: (x_t, h[, c]) -> (y_t, h'[, c']) for one timestep, batch dynamic, built from the
  readable reference step: every cell, layer norm and residual included; unidirectional.

``check`` runs the exported graph in onnxruntime beside PyTorch and returns the largest
difference, raising when it exceeds the tolerance.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from elman.files import atomic_path
from elman.nn.cellmath import state_sizes
from elman.nn.recurrent import Recurrent

MODES = ("sequence", "step")


def _copy(layer: Recurrent, backend: str) -> Recurrent:
    """The same layer (weights shared by value) on ``backend``, in eval mode."""
    clone = Recurrent(replace(layer.config, backend=backend))
    clone.load_state_dict(layer.state_dict())
    return clone.eval()


def _names(layer: Recurrent) -> list[str]:
    return ["h", "c"][: len(state_sizes(layer.config.cell(0)))]


class _Sequence(nn.Module):
    def __init__(self, layer: Recurrent) -> None:
        super().__init__()
        self.layer, self.lstm = _copy(layer, "native"), layer.config.mode == "LSTM"

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


def _check_sequence(layer: Recurrent) -> None:
    """A whole-sequence graph holds torch's fused op: it must be able to run the layer."""
    needs = layer.native_blockers()
    if layer.config.proj_size:
        needs.append("proj_size=0 (torch cannot export an LSTM with projections whole)")
    if needs:
        raise ValueError(f"mode: 'sequence' needs {'; '.join(needs)}; export it with mode='step'")


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


def export(layer: Recurrent, path: str | Path, mode: str = "sequence") -> Path:
    """Write ``layer`` as an ONNX graph of ``mode`` to ``path`` (atomically)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "sequence":
        _check_sequence(layer)
    module = _Sequence(layer) if mode == "sequence" else _Step(layer)
    states = _names(layer)
    inputs = ["x", *(f"{s}0" for s in states)]
    outputs = ["y", *(f"{s}n" for s in states)]
    batch_axis = 0 if mode == "step" or layer.config.batch_first else 1
    axes = {"x": {batch_axis: "batch"}} | {n: {1: "batch"} for n in inputs[1:] + outputs[1:]}
    if mode == "sequence":
        time_axis = 1 if layer.config.batch_first else 0
        axes["x"][time_axis] = "steps"
        axes["y"] = {batch_axis: "batch", time_axis: "steps"}
    else:
        axes["y"] = {0: "batch"}
    return _write(module, example_inputs(layer, mode), inputs, outputs, axes, path)


def _write(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    axes: dict,
    path: str | Path,
    opset: int = 17,
) -> Path:
    """Trace ``module`` on ``inputs`` into an ONNX file at ``path``, atomically."""
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            module,
            inputs,
            str(tmp),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    return Path(path)


def check(
    layer: Recurrent,
    path: str | Path,
    mode: str = "sequence",
    inputs: tuple[Tensor, ...] | None = None,
    tolerance: float = 1e-4,
) -> float:
    """The largest |ONNX - PyTorch| over every output for ``inputs`` (random ones by
    default, of another length and batch than the export's); raises past ``tolerance``."""
    inputs = inputs if inputs is not None else example_inputs(layer, mode, steps=7, batch=3)
    module = _Sequence(layer) if mode == "sequence" else _Step(layer)
    return _compare(module, path, inputs, tolerance)


def _compare(
    module: nn.Module, path: str | Path, inputs: tuple[Tensor, ...], tolerance: float
) -> float:
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError("checking an export needs onnxruntime: pip install elman[export]") from e
    with torch.no_grad():
        expected = module(*inputs)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = {
        n: (t.float() if t.is_floating_point() else t).numpy()
        for n, t in zip(names, inputs, strict=True)
    }
    got = session.run(None, feed)
    diff = max(
        float((torch.from_numpy(g) - e.float()).abs().max())
        for g, e in zip(got, expected, strict=True)
    )
    if not diff <= tolerance:
        raise ValueError(
            f"ONNX export {path}: outputs differ from PyTorch by {diff:.3g} > {tolerance:g}"
        )
    return diff


# ---- task models --------------------------------------------------------------------------
def with_backend(model: nn.Module, backend: str) -> nn.Module:
    """A copy of ``model`` whose recurrent layers all run on ``backend``, in eval mode."""
    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, Recurrent):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], _copy(module, backend))
    return model


class _Model(nn.Module):
    """(x, *state) -> (outputs, *state) of a model whose ``forward(x, state=...)`` returns
    (outputs, state): the language and music models."""

    def __init__(self, model: nn.Module, backend: str) -> None:
        super().__init__()
        self.model = with_backend(model, backend)
        self.lstm = self.model.rnn.config.mode == "LSTM"

    def forward(self, x: Tensor, *state: Tensor):
        out, new = self.model(x, state=state if self.lstm else state[0])
        return (out, *(new if isinstance(new, tuple) else (new,)))


def model_inputs(model: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    """``x`` (B, T[, F]) and zero initial states for it."""
    return (x, *model.rnn.zero_state(x.shape[0]))


def export_model(model: nn.Module, x: Tensor, path: str | Path, mode: str = "sequence") -> Path:
    """Write a language or music model as ONNX: inputs x (B, T) ids or (B, T, F) frames and
    the states, outputs the model's per-step outputs and the states. ``sequence``: T and B
    dynamic, torch's fused op inside (plain cells); ``step``: T = 1, B dynamic, any cell."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    rnn = model.rnn
    if mode == "sequence":
        _check_sequence(rnn)
    x = x[:, :1] if mode == "step" else x
    inputs = model_inputs(model, x)
    names = _names(rnn)
    axes = {"x": {0: "batch"}, "y": {0: "batch"}} | {
        n: {1: "batch"} for s in names for n in (f"{s}0", f"{s}n")
    }
    if mode == "sequence":
        axes["x"][1] = axes["y"][1] = "steps"
    wrapper = _Model(model, "native" if mode == "sequence" else "reference")
    return _write(
        wrapper,
        inputs,
        ["x", *(f"{s}0" for s in names)],
        ["y", *(f"{s}n" for s in names)],
        axes,
        path,
    )


def check_model(
    model: nn.Module, path: str | Path, x: Tensor, mode: str = "sequence", tolerance: float = 1e-4
) -> float:
    """The largest |ONNX - PyTorch| on input ``x`` (cut to one step for ``step`` graphs)."""
    x = x[:, :1] if mode == "step" else x
    return _compare(_Model(model, "reference"), path, model_inputs(model, x), tolerance)
