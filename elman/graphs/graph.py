"""A model graph to export: the module that computes it, its input and output names, its
dynamic axes and random inputs; written by torch's exporter (recurrent layers whole) and
checked in onnxruntime against PyTorch's reference path."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from elman.graphs import onnx as ox

Draw = Callable[[int, int, torch.Generator], tuple[Tensor, ...]]


@dataclass(frozen=True)
class Graph:
    """One graph of a model: its name (the file stem), the module computing it from
    ``inputs`` in order, input and output names, dynamic axes, and ``draw(batch, steps,
    generator)`` for random inputs. ``step``: the module takes single timesteps (traced
    through the reference step), else it runs whole sequences."""

    name: str
    module: nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    axes: dict = field(default_factory=dict)
    draw: Draw | None = None
    step: bool = False


Real = dict[str, tuple[Tensor, ...]]  # graph name -> real inputs from the run's own data
REAL_ROWS = 8  # held-out examples per real check


@dataclass(frozen=True)
class Export:
    """What a run exports: its ``graphs``, the ``real`` inputs each is checked on beside random
    ones, an extra ``check(paths) -> dict`` run on the written files (seq2seq: greedy decoding
    through onnxruntime), and the ``mode`` ("sequence" or "step") of models that have one."""

    graphs: list[Graph]
    real: Real = field(default_factory=dict)
    check: Callable[[dict[str, Path]], dict] | None = None
    mode: str | None = None


def held_out(read: Callable[[], Sequence], what: str) -> Sequence:
    """The first split (test, validation, training) of the run's own data that has rows;
    empty when that data cannot be read again (moved, or given in Python): the real check
    is then left out."""
    try:
        splits = read()
    except (OSError, ValueError) as e:
        warnings.warn(
            f"no real-data check: the run's {what} cannot be read again ({e})", stacklevel=3
        )
        return []
    return next((s for s in splits if s), [])


def write_graph(graph: Graph, path: str | Path, example: tuple[Tensor, ...]) -> Path:
    """Export ``graph`` traced on ``example`` to ``path``."""
    if graph.step:
        module, layers = ox.with_backend(graph.module, "reference"), {}
    else:
        module, layers = ox.exportable(graph.module)
    names = (list(graph.inputs), list(graph.outputs))
    return ox.write(module, example, *names, graph.axes, path, layers)


def check_graph(
    graph: Graph, path: str | Path, inputs: tuple[Tensor, ...], tolerance: float = 1e-4
) -> float:
    """max |ONNX - PyTorch (reference path)| of ``graph`` on ``inputs``; raises past it."""
    reference = ox.with_backend(graph.module, "reference")
    return ox.compare(reference, path, graph.inputs, inputs, tolerance)


def lengths(batch: int, steps: int, g: torch.Generator) -> Tensor:
    """Random lengths in 1..steps, mixed: the first full, the second (if any) shorter."""
    n = torch.randint(1, steps + 1, (batch,), generator=g)
    n[0] = steps
    if batch > 1 and steps > 1:
        n[1] = torch.randint(1, steps, (1,), generator=g)
    return n


def random_ids(size: int, shape: tuple[int, ...], g: torch.Generator, low: int = 1) -> Tensor:
    return torch.randint(low, max(size, low + 1), shape, generator=g)


def export_checked(
    found: list[Graph],
    paths: dict[str, Path],
    real: dict[str, tuple[Tensor, ...]] | None = None,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> dict[str, float]:
    """Write each graph to ``paths[name]`` (traced on random inputs, batch 2 and length 5)
    and check it on other random ones (batch 3, length 7) and on ``real[name]`` where given:
    {"random", "real"} or, for several graphs, {"NAME/random", ...} -> max |ONNX - PyTorch|.
    Raises ``ValueError`` past ``tolerance``."""
    g, diffs, real = torch.Generator().manual_seed(seed), {}, real or {}
    for graph in found:
        write_graph(graph, paths[graph.name], graph.draw(2, 5, g))
        checks = {"random": graph.draw(3, 7, g)}
        if graph.name in real:
            checks["real"] = real[graph.name]
        for kind, inputs in checks.items():
            key = kind if len(found) == 1 else f"{graph.name}/{kind}"
            diffs[key] = check_graph(graph, paths[graph.name], inputs, tolerance)
    return diffs
