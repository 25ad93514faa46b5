"""Throughput of Elman's recurrent layers beside torch.nn, a per-step autograd loop and the
GEMM floor, measured side by side in one process (issue 7's benchmark).

One layer, input size = hidden size = H, float32, random normal inputs, zero initial state;
tokens = B*T per call. Two settings: ``time-major`` (input (T, B, H), no input gradient) and
``batch-first+dx`` (``batch_first=True``, input (B, T, H) that requires a gradient, as a layer
inside a model gets it: what users run). ``--threads 1 2`` times every case at each thread
count in turn (users run both: one thread per data-parallel rank or worker is common).

- ``train``: drop the gradients, forward, ``out.sum().backward()``; ``infer``: one forward in
  eval mode under ``torch.no_grad()``.
- sides: ``ours`` (``elman.nn`` with ``backend="auto"``: the path it picks is recorded);
  ``torch.nn`` (same weights; for ``lnlstm`` a plain ``nn.LSTM`` and for ``lngru`` our plain
  GRU of the same size, the issue's yardsticks); ``loop`` (Elman's reference path: a Python
  loop of autograd ops per step after one input GEMM; timed at B <= 8 only, where a target
  reads it); ``floor`` (rnn/lstm/gru: the GEMMs of the step alone, as ``torch.mm`` into
  preallocated buffers: the input projection of all steps, one h W_hh^T per step, and for
  training one dgates W_hh per step plus dW_ih, dx and dW_hh over all steps).
- targets (issue 7), one row each:
  - train, rnn/lstm/gru, B >= 8, H >= 256: ours >= 0.8 x floor;
  - train, gru/rnn: ours >= 2 x torch.nn at B <= 8 and H <= 256, >= 1.5 x at B = 32;
    lstm: >= 1.3 x at B = 1 and H >= 256;
  - rnn/lstm/gru, every row: ours >= 0.97 x torch.nn ("never slower", within timing noise;
    issue 21), in every setting and at every thread count;
  - train, lnlstm/lngru: ours >= 1/1.5 x the plain layer everywhere, >= 3 x loop at B <= 8;
  - ``step``: one LSTM step at B=1, H=256 from Python (state in, state out): ours
    (``Recurrent.step``) at least as fast as ``torch.nn.LSTMCell``; microseconds reported.

Timing: warm-up, then interleaved rounds in a fresh random order each until rounds x the slowest
side's median reach ``--budget`` (``harness.measure``); medians. ``--threads`` sets torch's
thread count (default: torch's, 2 here).

    python bench/layers.py                    # the full grid, both settings, 1 and 2 threads
    python bench/layers.py --quick            # B 1,32; T 128; H 128,256
    python bench/layers.py --modes gru lngru --batch 8 --steps 128 --hidden 256
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import torch
from harness import Row, Step, Timing, markdown_table, measure, metadata, summary, warm_up
from harness import write_results as write_files
from torch import Tensor, nn

import elman.nn as enn

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
MODES = ("rnn", "lstm", "gru", "lnlstm", "lngru")
KINDS = ("train", "infer")
GRID = {"batch": [1, 8, 32, 128], "steps": [128, 512], "hidden": [128, 256, 512]}
QUICK_GRID = {"batch": [1, 32], "steps": [128], "hidden": [128, 256]}
LOOP_MAX_BATCH = 8
NOISE = 0.97  # "never slower than torch.nn", allowing for timing noise
SETTINGS = ("time-major", "batch-first+dx")
DATA = "random normal inputs, float32, zero initial state; settings " + ", ".join(SETTINGS)


def layers_for(mode: str, h: int, batch_first: bool = False) -> dict[str, nn.Module]:
    """The sides that are modules, seeded; same weights wherever the function is the same."""
    torch.manual_seed(0)
    bf = {"batch_first": batch_first}
    if mode in GATES:
        ref = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[mode](h, h, **bf)
        ours = {"rnn": enn.RNN, "lstm": enn.LSTM, "gru": enn.GRU}[mode](h, h, **bf)
        ours.load_state_dict(ref.state_dict())
        loop = type(ours)(h, h, backend="reference", **bf)
        loop.load_state_dict(ref.state_dict())
        return {"ours": ours, "torch.nn": ref, "loop": loop}
    if mode in ("lnlstm", "lngru"):
        cls = enn.LayerNormLSTM if mode == "lnlstm" else enn.LayerNormGRU
        ours = cls(h, h, **bf)
        loop = cls(h, h, backend="reference", **bf)
        loop.load_state_dict(ours.state_dict())
        plain = nn.LSTM(h, h, **bf) if mode == "lnlstm" else enn.GRU(h, h, **bf)
        return {"ours": ours, "torch.nn": plain, "loop": loop}
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def gemm_floor(kind: str, gates: int, x: Tensor) -> Step:
    """The matrix products of one step of a ``gates``-gate layer on ``x`` (T, B, H), alone."""
    x = x.detach()
    t, b, h = x.shape
    g = gates * h
    w_ih, w_hh = torch.randn(g, h) * 0.05, torch.randn(g, h) * 0.05
    x2d, state = x.reshape(t * b, h), torch.randn(b, h)
    xp, hp, dh = torch.empty(t * b, g), torch.empty(b, g), torch.empty(b, h)
    dgates, d_ih, d_hh, dx = torch.randn(t * b, g), torch.empty(g, h), torch.empty(g, h), x2d * 0
    w_ih_t, w_hh_t = w_ih.t(), w_hh.t()

    def step() -> None:
        torch.mm(x2d, w_ih_t, out=xp)
        for _ in range(t):
            torch.mm(state, w_hh_t, out=hp)
        if kind == "train":
            for k in range(t):
                torch.mm(dgates[k * b : (k + 1) * b], w_hh, out=dh)
            torch.mm(dgates.t(), x2d, out=d_ih)
            torch.mm(dgates, w_ih, out=dx)
            torch.mm(dgates.t(), x2d, out=d_hh)

    return step


def module_step(kind: str, model: nn.Module, x: Tensor) -> Step:
    if kind == "infer":
        model.eval()

        def infer() -> None:
            with torch.no_grad():
                model(x)

        return infer
    model.train()
    params = [*model.parameters(), x]

    def train() -> None:
        for p in params:
            p.grad = None
        model(x)[0].sum().backward()

    return train


def steps_for(mode: str, kind: str, x: Tensor, setting: str) -> tuple[dict[str, Step], str]:
    """The timed callables of one case on time-major ``x`` (T, B, H), and the path ours runs
    on; ``setting`` "batch-first+dx" feeds them ``x`` as (B, T, H) requiring a gradient."""
    b, h = x.shape[1], x.shape[2]
    batch_first = setting == "batch-first+dx"
    models = layers_for(mode, h, batch_first)
    if b > LOOP_MAX_BATCH:
        del models["loop"]
    floor_x = x
    if batch_first:
        x = x.transpose(0, 1).contiguous().requires_grad_(kind == "train")
    steps = {name: module_step(kind, m, x) for name, m in models.items()}
    if mode in GATES:
        steps["floor"] = gemm_floor(kind, GATES[mode], floor_x)
    ours = models["ours"]
    with torch.set_grad_enabled(kind == "train"):
        path = ours.path(batch=b)  # type: ignore[operator]
    return steps, path


def targets_for(mode: str, kind: str, b: int, h: int) -> list[tuple[str, float]]:
    """(side ours is compared with, the least ratio of tokens/s) for one case."""
    out: list[tuple[str, float]] = []
    if mode in GATES:
        out.append(("torch.nn", NOISE))
        if kind == "train" and b >= 8 and h >= 256:
            out.append(("floor", 0.8))
        if kind == "train" and mode in ("gru", "rnn") and b <= 8 and h <= 256:
            out.append(("torch.nn", 2.0))
        if kind == "train" and mode in ("gru", "rnn") and b == 32:
            out.append(("torch.nn", 1.5))
        if kind == "train" and mode == "lstm" and b == 1 and h >= 256:
            out.append(("torch.nn", 1.3))
    elif kind == "train":
        out.append(("torch.nn", 1 / 1.5))
        if b <= LOOP_MAX_BATCH:
            out.append(("loop", 3.0))
    return out


def case_rows(
    mode: str, kind: str, b: int, t: int, h: int, timing: Timing, setting: str = "time-major"
) -> list[Row]:
    """The measurement row of one case, then one row per target it carries."""
    x = torch.randn(t, b, h)
    steps, path = steps_for(mode, kind, x, setting)
    warm_up(steps, timing.warmup)
    times = measure(steps, timing)
    rate = {n: b * t / statistics.median(ts) for n, ts in times.items()}
    name = f"{mode} {kind} B={b} T={t} H={h} {setting} {torch.get_num_threads()}t"
    row: Row = {
        "name": name,
        "path": path,
        "tokens_per_s": {n: round(r, 1) for n, r in rate.items()},
        "median_ms": {n: round(1e3 * statistics.median(ts), 3) for n, ts in times.items()},
        "reps": len(times["ours"]),
        "threads": torch.get_num_threads(),
        "setting": setting,
    }
    rows = [row]
    for side, least in targets_for(mode, kind, b, h):
        ratio = rate["ours"] / rate[side]
        rows.append(
            {
                "name": f"{name}: ours / {side} >= {least:.2f}",
                "metric": f"tokens_per_s_ratio_vs_{side}",
                "value": round(ratio, 3),
                "target": round(least, 3),
                "better": "higher",
                "met": ratio >= least,
            }
        )
    return rows


def single_step_rows(timing: Timing, hidden: int = 256) -> list[Row]:
    """One LSTM step at B=1 from Python, state in and out: ours vs torch.nn.LSTMCell."""
    torch.manual_seed(0)
    cell = nn.LSTMCell(hidden, hidden)
    layer = enn.LSTM(hidden, hidden).eval()
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    x = torch.randn(1, hidden)
    h, c = torch.zeros(1, hidden), torch.zeros(1, hidden)
    state = (h[None], c[None])

    def ours() -> None:
        with torch.no_grad():
            layer.step(x, state)

    def theirs() -> None:
        with torch.no_grad():
            cell(x, (h, c))

    steps = {"ours": ours, "torch.nn.LSTMCell": theirs}
    warm_up(steps, timing.warmup)
    times = measure(steps, timing)
    micro = {n: 1e6 * statistics.median(ts) for n, ts in times.items()}
    ratio = micro["torch.nn.LSTMCell"] / micro["ours"]
    return [
        {
            "name": f"lstm step B=1 H={hidden} {torch.get_num_threads()}t: LSTMCell / ours >= 1",
            "metric": "time_ratio_vs_LSTMCell",
            "value": round(ratio, 3),
            "target": 1.0,
            "better": "higher",
            "met": ratio >= 1.0,
            "microseconds_per_step": {n: round(v, 2) for n, v in micro.items()},
            "reps": len(times["ours"]),
        }
    ]


def table(rows: list[Row]) -> list[str]:
    sides = ["ours", "torch.nn", "loop", "floor"]
    head = ["case", "path", *[f"{s} tok/s" for s in sides], "ours/torch", "ours/floor"]
    body = []
    for r in rows:
        if "tokens_per_s" not in r:
            continue
        rate: dict = r["tokens_per_s"]  # type: ignore[assignment]
        cells = [f"{rate[s]:.0f}" if s in rate else "" for s in sides]
        ratios = [
            f"{rate['ours'] / rate[s]:.2f}" if s in rate else "" for s in ("torch.nn", "floor")
        ]
        body.append([str(r["name"]), str(r["path"]), *cells, *ratios])
    return markdown_table(head, body, left=2)


def markdown(meta: dict[str, object], rows: list[Row], planned: int) -> str:
    misses = [r for r in rows if r.get("met") is False]
    steps = [r for r in rows if "microseconds_per_step" in r]
    lines = [
        "# Layer throughput: Elman vs torch.nn, a per-step loop and the GEMM floor",
        "",
        f"{meta['machine']}; {meta['date']}; {meta['data']}; {meta['budget']}.",
        "torch.nn is nn.LSTM for lnlstm and Elman's plain GRU for lngru; loop = Elman's "
        "reference path (B <= 8 only); floor = the step's GEMMs alone.",
        "",
        *table(rows),
        "",
        *[f"- {r['name']}: {r['value']} ({r['microseconds_per_step']} µs)" for r in steps],
        "",
        "Targets missed:" if misses else "Every target met.",
        *[f"- {r['name']}: {r['value']}" for r in misses],
    ]
    return "\n".join([*lines, "", summary(rows, planned), ""])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="B 1,32; T 128; H 128,256")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--batch", nargs="+", type=int, help="batch sizes B (default 1 8 32 128)")
    p.add_argument("--steps", nargs="+", type=int, help="sequence lengths T (default 128 512)")
    p.add_argument("--hidden", nargs="+", type=int, help="sizes H (default 128 256 512)")
    p.add_argument("--budget", type=float, default=1.0, help="timed s per side")
    p.add_argument("--warmup", type=float, default=0.2, help="warm-up s per side")
    p.add_argument("--min-reps", type=int, default=2)
    p.add_argument("--max-reps", type=int, default=100)
    p.add_argument("--no-step", action="store_true", help="skip the single-step comparison")
    p.add_argument(
        "--threads", nargs="+", type=int, default=[1, 2], help="thread counts, each in turn"
    )
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    p.add_argument("--name", help="results file stem (default layers, --quick layers_quick)")
    args = p.parse_args(argv)
    grid = QUICK_GRID if args.quick else GRID
    for key in ("batch", "steps", "hidden"):
        if getattr(args, key) is None:
            setattr(args, key, grid[key])
    args.name = args.name or ("layers_quick" if args.quick else "layers")
    return args


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    timing = Timing(args.budget, args.warmup, args.min_reps, args.max_reps)
    threads = "/".join(map(str, args.threads))
    meta = metadata("layers", timing.describe(threads), DATA)
    cases = [
        (mode, kind, b, t, h, setting, n)
        for n in args.threads
        for setting in args.settings
        for mode in args.modes
        for h in args.hidden
        for t in args.steps
        for b in args.batch
        for kind in args.kinds
    ]
    planned = sum(1 + len(targets_for(m, k, b, h)) for m, k, b, _, h, _, _ in cases)
    planned += 0 if args.no_step else len(args.threads)
    rows: list[Row] = []
    print(f"{meta['machine']}; {meta['budget']}", flush=True)
    start = time.perf_counter()
    for n in [] if args.no_step else args.threads:
        torch.set_num_threads(n)
        rows += single_step_rows(timing)
    for *case, setting, n in cases:
        torch.set_num_threads(n)
        new = case_rows(*case, timing, setting)
        rows += new
        first = new[0]
        print(first["name"], first["path"], first["tokens_per_s"], flush=True)
        for r in new[1:]:
            print("   ", r["name"], r["value"], "ok" if r["met"] else "MISS", flush=True)
        write_files(args.out, args.name, meta, rows, planned, markdown(meta, rows, planned))
        gc.collect()
    print(summary(rows, planned), f"({time.perf_counter() - start:.0f} s)", flush=True)
    return rows


if __name__ == "__main__":
    main()
