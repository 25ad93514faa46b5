"""Throughput of Elman's recurrent layers against torch.nn, measured side by side in one process.

What is measured, in tokens/s (tokens = B*T per call), for one layer with input_size =
hidden_size = H, float32, time-major input (T, B, H) of random normals, zero initial state:

- ``train``: one training step: drop the gradients, forward, ``out.sum().backward()``.
- ``infer``: one forward in eval mode under ``torch.no_grad()``.

Modes:

- ``rnn``, ``lstm``, ``gru``: ``elman.nn.RNN/LSTM/GRU`` against ``torch.nn.RNN/LSTM/GRU`` with
  the same weights (``ours.load_state_dict(ref.state_dict())``). Target: ratio >= 0.95.
- ``lnlstm``: ``elman.nn.LayerNormLSTM`` (no torch.nn counterpart) against a plain
  ``torch.nn.LSTM`` of the same size, and against a naive hand-written layer-norm LSTM that a
  user would write: a Python loop over ``x[t]`` with ``F.linear`` and ``F.layer_norm`` per step,
  with the same weights as ours. Target (row ``train B=32 T=128 H=256`` only): ratio vs
  nn.LSTM >= 0.5, i.e. at most twice nn.LSTM's training time. The ratio vs the naive loop is
  reported without a target.

How: the machines are shared and noisy, so every figure is a ratio taken in one run. For each
configuration every side is warmed up, then the sides are called in interleaved rounds (the
order rotates each round); rounds continue until rounds x the slowest side's median call time
reach ``--budget`` seconds (at least ``--min-reps``, at most ``--max-reps`` rounds, and at most
4 x budget of wall time per side when other tenants stall every call), and each side's median
call time gives its tokens/s (the minimum is recorded too). The default keeps torch's thread
count (``--threads`` sets it); every row records it. Before timing, ours is checked against
its same-weights reference on one forward over the first ``CHECK_STEPS`` steps
(``max_abs_diff_first_32_steps``): random layer-norm LSTMs are chaotic, and float32 rounding
differences from a different summation order grow to O(1) over hundreds of steps (in float64
the two stay within 1e-5 over 512 steps). Each row records which path ours ran ("native":
torch's fused op, "reference": Elman's loop).

Run time on a quiet 2-core machine: the default grid (144 rows) about 16-20 minutes, most of
it in the B=128, H=512 rows (a training step there takes 1.5-7 s); ``--quick`` about 40 s.

Results: a table on stdout as it goes, and ``<out>/layers.json`` and ``<out>/layers.md``
(``layers_quick.*`` with ``--quick``), rewritten after every row.

    python bench/layers.py                       # the full grid
    python bench/layers.py --quick               # smoke run
    python bench/layers.py --modes lstm lnlstm --batch 32 --steps 128 --hidden 256
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import Row, Step, Timing, markdown_table, measure, metadata, summary, warm_up
from harness import write_results as write_files
from torch import Tensor, nn

import elman.nn as enn

STANDARD: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "rnn": (enn.RNN, nn.RNN),
    "lstm": (enn.LSTM, nn.LSTM),
    "gru": (enn.GRU, nn.GRU),
}
MODES = (*STANDARD, "lnlstm")
KINDS = ("train", "infer")
GRID = {"batch": [1, 32, 128], "steps": [128, 512], "hidden": [128, 256, 512]}
QUICK_GRID = {"batch": [1, 32], "steps": [128], "hidden": [128, 256]}
TARGET_STANDARD = 0.95  # ours / torch.nn tokens/s, every standard row
TARGET_LN = 0.5  # LayerNormLSTM / nn.LSTM tokens/s, on LN_TARGET_CASE only
LN_TARGET_CASE = ("train", 32, 128, 256)  # kind, B, T, H
DIFF_WARN = 1e-3
CHECK_STEPS = 32  # parity is checked on this prefix of the input (see the module docstring)
DATA = "random normal inputs (T, B, H), float32, zero initial state"


@dataclass(frozen=True)
class Case:
    """One configuration: mode, kind (train/infer), batch B, steps T, hidden H."""

    mode: str
    kind: str
    batch: int
    steps: int
    hidden: int

    @property
    def name(self) -> str:
        return f"{self.mode} {self.kind} B={self.batch} T={self.steps} H={self.hidden}"

    @property
    def tokens(self) -> int:
        return self.batch * self.steps


class NaiveLayerNormLSTM(nn.Module):
    """A layer-norm LSTM as a user writes it by hand: per-step projections in a Python loop.

    (i, f, g, o)_t = LN(W_ih x_t; γ_ih) + b_ih + LN(W_hh h_{t-1}; γ_hh) + b_hh
    c_t = σ(f_t) ⊙ c_{t-1} + σ(i_t) ⊙ tanh(g_t)
    h_t = σ(o_t) ⊙ tanh(LN(c_t; γ_c, β_c))                          (Ba et al. 2016)
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        g, h = 4 * hidden_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, h))
        self.weight_hh = nn.Parameter(torch.empty(g, h))
        self.bias_ih = nn.Parameter(torch.empty(g))
        self.bias_hh = nn.Parameter(torch.empty(g))
        self.weight_ln_ih = nn.Parameter(torch.ones(g))
        self.weight_ln_hh = nn.Parameter(torch.ones(g))
        self.weight_ln_c = nn.Parameter(torch.ones(h))
        self.bias_ln_c = nn.Parameter(torch.zeros(h))

    def copy_from(self, layer: nn.Module) -> None:
        """Take the weights of a one-layer ``elman.nn.LayerNormLSTM`` (names end in ``_l0``)."""
        state = {k.removesuffix("_l0"): v for k, v in layer.state_dict().items()}
        self.load_state_dict(state)  # strict: fails loudly if the names ever change

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (T, B, H) -> output (T, B, H), (h_T, c_T) each (B, H)."""
        size = self.weight_ln_c.shape
        h = x.new_zeros(x.shape[1], size[0])
        c = x.new_zeros(x.shape[1], size[0])
        outputs = []
        for t in range(x.shape[0]):
            a_x = F.layer_norm(F.linear(x[t], self.weight_ih), (4 * size[0],), self.weight_ln_ih)
            a_h = F.layer_norm(F.linear(h, self.weight_hh), (4 * size[0],), self.weight_ln_hh)
            gates = a_x + self.bias_ih + a_h + self.bias_hh
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            c_hat = F.layer_norm(c, size, self.weight_ln_c, self.bias_ln_c)
            h = torch.sigmoid(o) * torch.tanh(c_hat)
            outputs.append(h)
        return torch.stack(outputs), (h, c)


def build_models(mode: str, hidden: int) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Ours and the baselines by name, seeded; weights shared wherever the function is."""
    torch.manual_seed(0)
    if mode in STANDARD:
        ours_cls, ref_cls = STANDARD[mode]
        ref = ref_cls(hidden, hidden)
        ours = ours_cls(hidden, hidden)
        ours.load_state_dict(ref.state_dict())
        return ours, {"torch.nn": ref}
    if mode == "lnlstm":
        ours = enn.LayerNormLSTM(hidden, hidden)
        naive = NaiveLayerNormLSTM(hidden)
        naive.copy_from(ours)
        return ours, {"torch.nn.LSTM": nn.LSTM(hidden, hidden), "naive loop": naive}
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def path_of(layer: nn.Module) -> str:
    """Which path a layer's plain forward runs: torch's fused op or Elman's reference loop."""
    return "native" if layer.uses_native() else "reference"


@torch.no_grad()
def max_abs_diff(ours: nn.Module, reference: nn.Module, x: Tensor) -> float:
    """Largest output difference on one eval-mode forward (ours vs a same-weights reference)."""
    ours.eval()
    reference.eval()
    return (ours(x)[0] - reference(x)[0]).abs().max().item()


def train_step(model: nn.Module, x: Tensor) -> Step:
    params = list(model.parameters())

    def step() -> None:
        for p in params:
            p.grad = None
        out = model(x)[0]
        out.sum().backward()

    return step


def infer_step(model: nn.Module, x: Tensor) -> Step:
    def step() -> None:
        with torch.no_grad():
            model(x)

    return step


def make_step(kind: str, model: nn.Module, x: Tensor) -> Step:
    if kind == "train":
        model.train()
        return train_step(model, x)
    if kind == "infer":
        model.eval()
        return infer_step(model, x)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def run_case(
    case: Case, ours: nn.Module, baselines: dict[str, nn.Module], x: Tensor, timing: Timing
) -> dict[str, list[float]]:
    """Seconds per call, one entry per round, for ours and every baseline."""
    models = {"ours": ours, **baselines}
    steps = {name: make_step(case.kind, m, x) for name, m in models.items()}
    warm_up(steps, timing.warmup)
    return measure(steps, timing)


def target_of(case: Case) -> float | None:
    if case.mode in STANDARD:
        return TARGET_STANDARD
    if (case.kind, case.batch, case.steps, case.hidden) == LN_TARGET_CASE:
        return TARGET_LN
    return None


def make_row(
    case: Case, times: dict[str, list[float]], path: str, diff: float, threads: int
) -> Row:
    """One results row from per-round ``times``: ours vs the first baseline (by medians), plus
    any further baseline (the naive loop)."""
    rate = {name: case.tokens / statistics.median(ts) for name, ts in times.items()}
    names = [n for n in times if n != "ours"]
    ratio = rate["ours"] / rate[names[0]]
    row: Row = {
        "name": case.name,
        "metric": "tokens_per_s_ratio_vs_torch",
        "value": round(ratio, 3),
    }
    target = target_of(case)
    if target is not None:
        row |= {"target": target, "better": "higher", "met": ratio >= target}
    row |= {
        "ours_tokens_per_s": round(rate["ours"], 1),
        "torch_tokens_per_s": round(rate[names[0]], 1),
        "path": path,
        "baseline": {n: round(rate[n], 1) for n in names},
    }
    if "naive loop" in rate:
        row["ratio_vs_naive"] = round(rate["ours"] / rate["naive loop"], 3)
    row |= {
        "median_ms": {n: round(1e3 * statistics.median(ts), 3) for n, ts in times.items()},
        "min_ms": {n: round(1e3 * min(ts), 3) for n, ts in times.items()},
        "reps": len(times["ours"]),
        "threads": threads,
    }
    row[f"max_abs_diff_first_{CHECK_STEPS}_steps"] = float(f"{diff:.2e}")
    return row


def cases_for(args: argparse.Namespace) -> list[tuple[str, int, int, int]]:
    """(mode, B, T, H) in the order they run; kinds run inside each."""
    return [
        (mode, b, t, h)
        for mode in args.modes
        for h in args.hidden
        for t in args.steps
        for b in args.batch
    ]


COLUMNS = (
    ("name", 34),
    ("path", 9),
    ("reps", 4),
    ("ours tok/s", 11),
    ("torch tok/s", 11),
    ("ratio", 6),
    ("target", 6),
    ("met", 4),
    ("naive tok/s", 11),
    ("vs naive", 8),
)


def cells(row: Row) -> list[str]:
    """A row's table cells, in ``COLUMNS`` order; blank where a row has no such figure."""
    naive = row["baseline"].get("naive loop")  # type: ignore[union-attr]
    met = row.get("met")
    return [
        str(row["name"]),
        str(row["path"]),
        str(row["reps"]),
        f"{row['ours_tokens_per_s']:.0f}",
        f"{row['torch_tokens_per_s']:.0f}",
        f"{row['value']:.3f}",
        f"{row['target']:g}" if "target" in row else "",
        "" if met is None else ("yes" if met else "NO"),
        "" if naive is None else f"{naive:.0f}",
        f"{row['ratio_vs_naive']:.3f}" if "ratio_vs_naive" in row else "",
    ]


def text_line(values: list[str]) -> str:
    return "  ".join(
        v.ljust(w) if i == 0 else v.rjust(w)
        for i, (v, (_, w)) in enumerate(zip(values, COLUMNS, strict=True))
    )


def markdown(meta: dict[str, object], rows: list[Row], planned: int) -> str:
    lines = [
        "# Layer throughput: Elman vs torch.nn",
        "",
        f"{meta['machine']}; {meta['date']}; {meta['data']}; {meta['budget']}.",
        "ratio = ours tokens/s / torch tokens/s (torch.nn.LSTM for lnlstm rows); "
        "vs naive = ours / the naive per-step layer-norm LSTM loop.",
        "",
        *markdown_table([name for name, _ in COLUMNS], [cells(r) for r in rows], left=2),
    ]
    return "\n".join([*lines, "", summary(rows, planned), ""])


def write_results(
    out: Path, stem: str, meta: dict[str, object], rows: list[Row], planned: int
) -> None:
    write_files(out, stem, meta, rows, planned, markdown(meta, rows, planned))


def int_list(text: str) -> list[int]:
    """Positive integers from one command-line word: "32" or "1,32,128"."""
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive integers like 32 or 1,32; got {text!r}"
        )
    return values


def flat(values: list[list[int]] | None, default: list[int]) -> list[int]:
    return default if values is None else [v for vs in values for v in vs]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: B 1,32; T 128; H 128,256")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--batch", nargs="+", type=int_list, help="batch sizes B (default 1 32 128)")
    p.add_argument("--steps", nargs="+", type=int_list, help="sequence lengths T (default 128 512)")
    p.add_argument("--hidden", nargs="+", type=int_list, help="sizes H (default 128 256 512)")
    p.add_argument("--budget", type=float, help="timed s per side (default 1.5, --quick 0.4)")
    p.add_argument("--warmup", type=float, help="warm-up s per side (default 0.3, --quick 0.15)")
    p.add_argument("--min-reps", type=int, default=3, help="fewest timed rounds (default 3)")
    p.add_argument("--max-reps", type=int, default=200, help="most timed rounds (default 200)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results", help="results directory"
    )
    p.add_argument("--name", help="results file stem (default layers, --quick layers_quick)")
    args = p.parse_args(argv)
    grid = QUICK_GRID if args.quick else GRID
    for key in ("batch", "steps", "hidden"):
        setattr(args, key, flat(getattr(args, key), grid[key]))
    if args.budget is None:
        args.budget = 0.4 if args.quick else 1.5
    if args.warmup is None:
        args.warmup = 0.15 if args.quick else 0.3
    if args.name is None:
        args.name = "layers_quick" if args.quick else "layers"
    return args


def bench_config(mode: str, b: int, t: int, h: int, kinds: list[str], timing: Timing) -> list[Row]:
    """Every kind of one (mode, B, T, H): build once, check parity, then time."""
    ours, baselines = build_models(mode, h)
    x = torch.randn(t, b, h)
    same = next(iter(baselines.values())) if mode in STANDARD else baselines["naive loop"]
    diff = max_abs_diff(ours, same, x[:CHECK_STEPS])
    if diff > DIFF_WARN:
        print(f"warning: {mode} B={b} T={t} H={h}: ours differs from its reference by {diff:.2e}")
    rows = []
    for kind in kinds:
        case = Case(mode, kind, b, t, h)
        times = run_case(case, ours, baselines, x, timing)
        rows.append(make_row(case, times, path_of(ours), diff, torch.get_num_threads()))
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        timing = Timing(args.budget, args.warmup, args.min_reps, args.max_reps)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    meta = metadata("layers", timing.describe(torch.get_num_threads()), DATA)
    configs = cases_for(args)
    planned = len(configs) * len(args.kinds)
    print(f"{meta['machine']}; {meta['budget']}", flush=True)
    print(text_line([name for name, _ in COLUMNS]), flush=True)
    rows: list[Row] = []
    start = time.perf_counter()
    for mode, b, t, h in configs:
        for row in bench_config(mode, b, t, h, args.kinds, timing):
            rows.append(row)
            print(text_line(cells(row)), flush=True)
            write_results(args.out, args.name, meta, rows, planned)
        gc.collect()
    print(summary(rows, planned), flush=True)
    elapsed = time.perf_counter() - start
    print(f"{elapsed:.0f} s; wrote {args.out / args.name}.json and .md", flush=True)
    return rows


if __name__ == "__main__":
    main()
