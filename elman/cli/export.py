"""``elman export DIR --format onnx``: a trained model as ONNX graphs with its recurrent
state as inputs and outputs, checked against PyTorch in onnxruntime on random and real inputs
(the command fails past ``--tolerance``); see ``elman.export.run``."""

from __future__ import annotations

import argparse

from elman.export.run import export_run
from elman.graphs import onnx as ox
from elman.tasks.options import number


def add_parsers(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "export", help="write a trained model as ONNX graphs, checked in onnxruntime"
    )
    e.add_argument("dir", help="model directory")
    e.add_argument("--format", choices=("onnx",), default="onnx", help="the output format")
    e.add_argument(
        "--mode",
        choices=ox.MODES,
        default=None,
        help="charlm, wordlm, music: sequence (whole chunks, length and batch dynamic; the "
        "default) or step (one timestep); other tasks export their own graphs",
    )
    e.add_argument(
        "--out",
        default=None,
        help="the ONNX file (default: DIR/model-MODE.onnx), or for seq2seq the folder of "
        "encoder.onnx and decoder-step.onnx (default: DIR)",
    )
    e.add_argument("--overwrite", action="store_true", help="replace the files already at --out")
    e.add_argument("--tolerance", type=number, default=1e-4, help="largest difference allowed")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best")


def export(a: argparse.Namespace) -> dict:
    if not a.tolerance > 0:
        raise ValueError(f"--tolerance: expected a value > 0, got {a.tolerance}")
    try:
        return export_run(a.dir, a.out, a.mode, a.tolerance, a.checkpoint, a.overwrite)
    except ModuleNotFoundError as e:
        if e.name not in ("onnx", "onnxruntime", "onnxscript"):
            raise
        raise ImportError(f"ONNX export needs {e.name}: pip install elman[export]") from e
