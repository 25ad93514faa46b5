"""Export a trained run (a model directory) as ONNX, checked in onnxruntime on random inputs
and on real ones from the run's own held-out data (``elman export DIR --format onnx``).

The run's task gives its graphs and real inputs (``Run.graphs``: ``elman.graphs.graph.Export``);
here each graph is written to ``OUT/NAME.onnx`` and checked: the largest |ONNX - PyTorch| per
graph and input kind, an error past the tolerance, then the task's own check of the written
files (seq2seq: greedy decoding through onnxruntime gives PyTorch's tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from elman.files import output_dir, output_file
from elman.graphs import onnx as ox
from elman.graphs.graph import Graph, export_checked
from elman.tasks.registry import load_run


def export_run(
    run: str | Path,
    out: str | Path | None = None,
    mode: str | None = None,
    tolerance: float = 1e-4,
    checkpoint: str = "best",
    overwrite: bool = True,
) -> dict:
    """Write the model of the run in ``run`` as ONNX and check it; returns a summary.

    out: the ONNX file of a one-graph model, or the folder of a seq2seq model's two
    (default: ``run``). mode: "sequence" or "step" for language and music models (default:
    sequence); other tasks export whole sequences (encoders) and decoder steps as they need.
    overwrite: off, a file that already exists at ``out`` is an error (the default paths in
    ``run`` are always replaced).
    """
    if not tolerance > 0:
        raise ValueError(f"tolerance: expected a value > 0, got {tolerance}")
    if mode is not None:
        ox.check_mode(mode)
    loaded = load_run(run, checkpoint)
    found = loaded.graphs(mode)
    paths = _paths(found.graphs, run, out, overwrite)
    diffs = export_checked(found.graphs, paths, found.real, tolerance)
    summary = {"task": loaded.task, "onnx": {k: str(p) for k, p in paths.items()}}
    if len(found.graphs) == 1:
        summary["onnx"] = str(paths[found.graphs[0].name])
    if found.mode is not None:
        summary["mode"] = found.mode
    summary |= {"max_abs_diff": diffs, "tolerance": tolerance}
    if found.check is not None:
        summary |= found.check(paths)
    return summary


def _paths(
    found: Sequence[Graph], run: str | Path, out: str | Path | None, overwrite: bool
) -> dict[str, Path]:
    """Where each graph goes; an error for a directory where a file goes (or the reverse),
    and for a file already at a given ``out`` unless ``overwrite``."""
    if len(found) == 1:
        name = found[0].name
        return {name: output_file(out, "--out", overwrite) if out else Path(run) / f"{name}.onnx"}
    folder = output_dir(out, "--out") if out else Path(run)
    if folder.suffix == ".onnx":
        raise ValueError(f"out: this model has {len(found)} graphs; give a folder, got {folder}")
    paths = {g.name: folder / f"{g.name}.onnx" for g in found}
    if out:
        for path in paths.values():
            output_file(path, "--out", overwrite)
    return paths
