"""``elman export DIR --format onnx``: a trained model as an ONNX graph with its recurrent
state as inputs and outputs, checked against PyTorch in onnxruntime on random and real
inputs (the command fails past ``--tolerance``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from elman.data.tokenize import EOS_ID
from elman.export import onnx as ox
from elman.tasks import charlm, music, wordlm
from elman.tasks import music_sampling as sampling


def add_parsers(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "export", help="write a charlm, wordlm or music model as ONNX, checked in onnxruntime"
    )
    e.add_argument("dir", help="model directory")
    e.add_argument("--format", choices=("onnx",), default="onnx", help="the output format")
    e.add_argument(
        "--mode",
        choices=ox.MODES,
        default=None,
        help="sequence: whole chunks, length and batch dynamic (plain RNN/LSTM/GRU); step: one "
        "timestep, any cell (default: sequence where the cell allows it, else step)",
    )
    e.add_argument("--out", default=None, help="the ONNX file (default: DIR/model-MODE.onnx)")
    e.add_argument("--tolerance", type=float, default=1e-4, help="largest difference allowed")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best")


def _draw(size: int, frames: bool, batch: int, steps: int, g: torch.Generator) -> torch.Tensor:
    """Random token ids below ``size`` (B, T), or 0/1 frames (B, T, size)."""
    if frames:
        return torch.bernoulli(torch.full((batch, steps, size), 0.1), generator=g)
    return torch.randint(size, (batch, steps), generator=g)


def _inputs(a: argparse.Namespace, task: str) -> tuple[torch.nn.Module, torch.Tensor, dict]:
    """The model, a random input for the export, and {name: input} to check on."""
    frames = False
    if task == "charlm":
        model, vocab, _ = charlm.load(a.dir, a.checkpoint)
        real, size = charlm.validation_ids(a.dir)[:64][None], len(vocab)
    elif task == "wordlm":
        model, tokenizer, _ = wordlm.load(a.dir, a.checkpoint)
        real = torch.tensor([EOS_ID, *tokenizer.encode("the man said that it was")])[None]
        size = len(tokenizer)
    elif task == "music":
        model, encoding, meta = music.load(a.dir, a.checkpoint)
        real, size, frames = (
            sampling.primer_from(meta, 0, 32)[None],
            encoding.outputs,
            not encoding.tokens,
        )
    else:
        raise ValueError(
            f"`elman export` writes charlm, wordlm and music models so far; {a.dir} holds a "
            f"{task} model"
        )
    g = torch.Generator().manual_seed(0)
    example = _draw(size, frames, 2, 5, g)
    return model, example, {"random": _draw(size, frames, 3, 17, g), "real": real}


def export(a: argparse.Namespace, task: str) -> dict:
    if not a.tolerance > 0:
        raise ValueError(f"--tolerance: expected a value > 0, got {a.tolerance}")
    model, example, checks = _inputs(a, task)
    blocked = model.rnn.native_blockers() or model.rnn.config.proj_size
    mode = a.mode or ("step" if blocked else "sequence")
    path = Path(a.out) if a.out else Path(a.dir) / f"model-{mode}.onnx"
    ox.export_model(model, example, path, mode)
    diffs = {k: ox.check_model(model, path, x, mode, a.tolerance) for k, x in checks.items()}
    return {"onnx": str(path), "mode": mode, "max_abs_diff": diffs, "tolerance": a.tolerance}
