"""onnxruntime vs PyTorch on the CPU: one step at B=1 (state in, state out) and whole
sequences, for a 2-layer 256-wide LSTM, GRU and layer-norm LSTM exported by
``elman.graphs.onnx`` (issue 9's
export benchmark). Measured side by side in one process, interleaved rounds, medians.

- step: ours = ``layer.step(x, state)`` (Elman's compiled step); torch.nn = the same-weight
  ``torch.nn.LSTM/GRU`` called with T=1; onnx = the step graph in onnxruntime. Each timed
  call makes ``REPEAT`` steps, so a side is timed warm, as a stream stepping on is; the table
  gives microseconds per step.
- sequence: ours = ``layer(x, state)`` on the path ``backend="auto"`` picks; torch.nn = the
  same-weight ``torch.nn.LSTM/GRU``; onnx = the sequence graph (ONNX's LSTM/GRU operators).
- ln-lstm: torch.nn has none; its sequence graph is an ONNX ``Scan`` over the reference step.

    python bench/export.py                  # ~1 minute
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from harness import Row, Timing, markdown_table, measure, metadata, summary, warm_up
from harness import write_results as write_files

import elman.nn as enn
from elman.graphs import onnx as ox

HERE = Path(__file__).parent
REPEAT = 50  # steps per timed call in the step cases
LAYERS = {"lstm": enn.LSTM, "gru": enn.GRU, "ln-lstm": enn.LayerNormLSTM}


def sides(cell: str, kind: str, batch: int, steps: int, folder: Path) -> dict:
    torch.manual_seed(0)
    ours = LAYERS[cell](256, 256, 2).eval()
    ref = None  # torch.nn has no layer-norm LSTM
    if cell in ("lstm", "gru"):
        ref = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](256, 256, 2).eval()
        ours.load_state_dict(ref.state_dict())
    import onnxruntime

    mode = "step" if kind == "step" else "sequence"
    path = ox.export(ours, folder / f"{cell}-{mode}.onnx", mode)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    # ORT's pool spins after each run by default, stealing the cores from the side timed
    # next (torch.nn's own op measured 1.3-1.5x slower beside it): no spinning.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = ox.example_inputs(ours, mode, steps, batch)
    names = [i.name for i in session.get_inputs()]
    feed = {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
    x, state = inputs[0], inputs[1:]
    hx = state if len(state) == 2 else state[0]

    calls = REPEAT if kind == "step" else 1

    @torch.no_grad()
    def run_ours() -> None:
        for _ in range(calls):
            if kind == "step":
                ours.step(x, state)
            else:
                ours(x, hx)

    @torch.no_grad()
    def run_torch() -> None:
        for _ in range(calls):
            ref(x[None] if kind == "step" else x, hx)

    def run_onnx() -> None:
        for _ in range(calls):
            session.run(None, feed)

    both = {"ours": run_ours, "onnx": run_onnx}
    return both if ref is None else both | {"torch.nn": run_torch}


def main(argv: list[str] | None = None) -> list[Row]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--name", default="export")
    a = p.parse_args(argv)
    timing = Timing(a.budget, 0.2, 5, 2000)
    cases = [(c, "step", 1, 1) for c in ("lstm", "gru", "ln-lstm")]
    cases += [(c, "sequence", b, 128) for c in ("lstm", "gru", "ln-lstm") for b in (1, 16)]
    meta = metadata("export", timing.describe(torch.get_num_threads()), "random normal inputs")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for cell, kind, batch, steps in cases:
            fns = sides(cell, kind, batch, steps, Path(tmp))
            warm_up(fns, timing.warmup)
            times = measure(fns, timing)
            per = REPEAT if kind == "step" else 1
            us = {k: 1e6 * sorted(v)[len(v) // 2] / per for k, v in times.items()}
            name = f"{cell} 2x256 {kind} B={batch}" + (f" T={steps}" if kind == "sequence" else "")
            rows.append(
                {"name": name, "metric": "microseconds", "value": us["onnx"], "microseconds": us}
            )
            print(name, {k: round(v, 1) for k, v in us.items()}, flush=True)
    body = [
        [
            str(r["name"]),
            *(
                f"{r['microseconds'][k]:.0f}" if k in r["microseconds"] else "-"
                for k in ("ours", "torch.nn", "onnx")
            ),
            f"{r['microseconds']['ours'] / r['microseconds']['onnx']:.2f}",
        ]
        for r in rows
    ]
    md = "\n".join(
        [
            "# onnxruntime vs PyTorch (µs per step or per sequence, medians)",
            "",
            f"{meta['machine']}; {meta['date']}; {meta['budget']}.",
            "",
            *markdown_table(["case", "ours", "torch.nn", "onnxruntime", "ours / onnx"], body),
            "",
            summary(rows, len(rows)),
            "",
        ]
    )
    write_files(a.out, a.name, meta, rows, len(rows), md)
    return rows


if __name__ == "__main__":
    main()
