"""Long-range memory: the adding problem, copy memory and sequential digits for a tanh RNN,
an IRNN (ReLU, identity-initialised W_hh; Le et al. 2015), an LSTM and a GRU, with the same
budget each (issue 8's benchmark).

- adding, T in {100, 200, 600}: fresh batches every step, a fixed test set of 1,000;
  metric: test MSE (always answering 1 scores 1/6 ~ 0.167); solved: MSE < 0.01.
- copy memory, delay T in {100, 200} (T + 20 steps, 8 symbols, 10 to recall; TCN's setup):
  metric: accuracy on the 10 recalled symbols of 1,000 test sequences, plus cross-entropy
  per step (blanks then a uniform guess: 10 ln 8 / (T + 20)); solved: recall accuracy >= 0.99.
- digits: scikit-learn's 1,797 8x8 images (a seeded 80/20 split), read pixel by pixel (64
  steps) and row by row (8 steps of 8); metric: test accuracy; solved: >= 0.9.

Every model: one layer of ``--hidden`` units, a linear read-out of the last step (adding,
digits) or of every step (copy), Adam, gradient norm clipped to 1, ``--batch`` sequences per
step. Learning rate ``--lr`` (1e-3), but ``--lr-irnn`` (1e-4) for the IRNN: Adam's first
steps move every weight by about lr, and on an identity W_hh compounded over 600 steps 1e-3
took the outputs to 4e9 at the second step (measured), as Le et al. 2015 warn for the IRNN.
Steps-to-solve is the first evaluation (every ``--eval-every`` steps) that meets the
criterion; training runs the whole budget either way. Cases run in ``--jobs`` processes of
one torch thread each.

Expected shape (the issue): LSTM and GRU solve adding at T=200 where the tanh RNN does not;
the TCN paper's Table 1 gives adding T=600 MSE: LSTM 0.164, GRU 5.3e-5, RNN 0.177.

    python bench/long_range.py                         # every case (see --help for budgets)
    python bench/long_range.py --tasks adding --lengths 200 --steps-adding 20000 \
        --eval-every 200 --name long_range_adding200   # adding T=200 on a longer budget
    python bench/long_range.py --tasks adding --steps-adding 300 --lengths 100 --name screen_lr
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import Row, markdown_table, metadata, summary
from harness import write_results as write_files
from torch import Tensor, nn

import elman.nn as enn
from elman.data import memory

CELLS = ("rnn", "irnn", "lstm", "gru")
TCN_ADDING_600 = {"lstm": 0.164, "gru": 5.3e-5, "rnn": 0.177}
SOLVED = {"adding": 0.01, "copy": 0.99, "digits": 0.9}


@dataclass(frozen=True)
class Case:
    task: str  # adding, copy, digits
    length: int  # T for adding/copy; 64 (pixel) or 8 (row) for digits
    cell: str
    steps: int
    hidden: int
    batch: int
    lr: float
    eval_every: int
    seed: int

    @property
    def name(self) -> str:
        if self.task == "digits":
            return f"digits {'pixel' if self.length == 64 else 'row'} {self.cell}"
        return f"{self.task} T={self.length} {self.cell}"


def recurrent(cell: str, inputs: int, hidden: int) -> nn.Module:
    if cell == "rnn":
        return enn.RNN(inputs, hidden, batch_first=True)
    if cell == "irnn":
        return enn.RNN(inputs, hidden, nonlinearity="relu", init="identity", batch_first=True)
    if cell == "lstm":
        return enn.LSTM(inputs, hidden, batch_first=True, forget_bias=1.0)
    if cell == "gru":
        return enn.GRU(inputs, hidden, batch_first=True)
    raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")


class Net(nn.Module):
    """A recurrent layer and a linear read-out of the last step or of every step."""

    def __init__(self, cell: str, inputs: int, hidden: int, outputs: int, every_step: bool):
        super().__init__()
        self.rnn, self.head = recurrent(cell, inputs, hidden), nn.Linear(hidden, outputs)
        self.every_step = every_step

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.rnn(x)  # (B, T, H)
        return self.head(y if self.every_step else y[:, -1])


def copy_inputs(tokens: Tensor) -> Tensor:
    return F.one_hot(tokens, 10).float()  # 8 symbols, blank, cue


def loss_of(task: str, out: Tensor, y: Tensor) -> Tensor:
    if task == "adding":
        return F.mse_loss(out.squeeze(-1), y)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate(case: Case, net: Net, test: memory.MemoryTask) -> dict[str, float]:
    net.eval()
    x = copy_inputs(test.inputs) if case.task == "copy" else test.inputs
    out = torch.cat([net(part) for part in x.split(500)])
    net.train()
    if case.task == "adding":
        return {"test_mse": F.mse_loss(out.squeeze(-1), test.targets).item()}
    if case.task == "copy":
        recall = (out[:, -10:].argmax(-1) == test.targets[:, -10:]).float().mean().item()
        return {"recall_accuracy": recall, "test_nats": loss_of("copy", out, test.targets).item()}
    return {"test_accuracy": (out.argmax(-1) == test.targets).float().mean().item()}


def data_for(case: Case, gen: torch.Generator):
    """(a train batch sampler, the test set)."""
    if case.task == "adding":
        test = memory.adding_problem(1000, case.length, torch.Generator().manual_seed(10**6))
        return (lambda: memory.adding_problem(case.batch, case.length, gen)), test
    if case.task == "copy":
        test = memory.copy_memory(1000, case.length, generator=torch.Generator().manual_seed(10**6))

        def copy_batch() -> memory.MemoryTask:
            b = memory.copy_memory(case.batch, case.length, generator=gen)
            return memory.MemoryTask(copy_inputs(b.inputs), b.targets)

        return copy_batch, test
    train, test = memory.split(
        memory.digit_sequences("pixel" if case.length == 64 else "row"), 0.2, 0
    )

    def digit_batch() -> memory.MemoryTask:
        pick = torch.randint(len(train), (case.batch,), generator=gen)
        return memory.MemoryTask(*train.batch(pick))

    return digit_batch, test


def headline(case: Case, scores: dict[str, float]) -> tuple[str, float]:
    key = {"adding": "test_mse", "copy": "recall_accuracy", "digits": "test_accuracy"}[case.task]
    return key, scores[key]


def solved(case: Case, value: float) -> bool:
    return value < SOLVED["adding"] if case.task == "adding" else value >= SOLVED[case.task]


def run_case(case: Case) -> Row:
    torch.set_num_threads(1)
    torch.manual_seed(case.seed)
    gen = torch.Generator().manual_seed(case.seed)
    batch, test = data_for(case, gen)
    inputs = {"adding": 2, "copy": 10, "digits": 1 if case.length == 64 else 8}[case.task]
    outputs = {"adding": 1, "copy": 10, "digits": 10}[case.task]
    net = Net(case.cell, inputs, case.hidden, outputs, every_step=case.task == "copy")
    opt = torch.optim.Adam(net.parameters(), lr=case.lr)
    start, solved_at, curve, diverged = time.perf_counter(), None, [], False
    for step in range(1, case.steps + 1):
        b = batch()
        loss = loss_of(case.task, net(b.inputs), b.targets)
        if not math.isfinite(loss.item()):
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if step % case.eval_every == 0 or step == case.steps:
            metric, value = headline(case, evaluate(case, net, test))
            curve.append([step, round(value, 6)])
            if solved_at is None and solved(case, value):
                solved_at = step
    scores = evaluate(case, net, test)
    metric, value = headline(case, scores)
    row: Row = {
        "name": case.name,
        "metric": metric,
        "value": value if math.isfinite(value) else None,
        "better": "lower" if case.task == "adding" else "higher",
        "steps_to_solve": solved_at,
        "scores": scores,
        "diverged": diverged,
        "curve": curve,
        "seconds": round(time.perf_counter() - start, 1),
        "budget_steps": case.steps,
    }
    row.update(targets_for(case, value))
    return row


def targets_for(case: Case, value: float) -> Row:
    """The issue's targets and yardsticks for this row."""
    extra: Row = {}
    if case.task == "adding":
        extra["baseline"] = {"always 1": memory.ADDING_BASELINE_MSE}
        if case.length == 600 and case.cell in TCN_ADDING_600:
            extra["baseline"]["TCN paper"] = TCN_ADDING_600[case.cell]  # type: ignore[index]
        if case.length == 200 and case.cell in ("lstm", "gru"):
            ok = math.isfinite(value) and value < SOLVED["adding"]
            extra.update(target=SOLVED["adding"], met=ok)
    elif case.task == "copy":
        extra["baseline"] = {"blanks then uniform (nats)": memory.copy_baseline_nats(case.length)}
    else:
        extra["baseline"] = {"chance": 0.1}
    return extra


def cases_for(a: argparse.Namespace) -> list[Case]:
    out = []
    common = dict(hidden=a.hidden, batch=a.batch, eval_every=a.eval_every, seed=a.seed)
    for task in a.tasks:
        lengths = {"adding": a.lengths, "copy": a.delays, "digits": [64, 8]}[task]
        steps = {"adding": a.steps_adding, "copy": a.steps_copy, "digits": a.steps_digits}[task]
        for length in lengths:
            for cell in a.cells:
                lr = a.lr_irnn if cell == "irnn" else a.lr
                out.append(Case(task, length, cell, steps, lr=lr, **common))
    # longest first, so the pool's last minutes are not one long case alone
    return sorted(out, key=lambda c: -c.steps * (c.length + (20 if c.task == "copy" else 0)))


def table(rows: list[Row]) -> list[str]:
    body = []
    for r in rows:
        v = r["value"]
        shown = (
            "diverged" if v is None else (f"{v:.2e}" if r["metric"] == "test_mse" else f"{v:.3f}")
        )
        body.append(
            [
                str(r["name"]),
                str(r["metric"]),
                shown,
                str(r["steps_to_solve"] or "-"),
                f"{r['seconds']:.0f}",
            ]
        )
    return markdown_table(["case", "metric", "value", "steps to solve", "s"], body)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--tasks",
        nargs="+",
        choices=("adding", "copy", "digits"),
        default=["adding", "copy", "digits"],
    )
    p.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    p.add_argument("--lengths", nargs="+", type=int, default=[100, 200, 600], help="adding T")
    p.add_argument("--delays", nargs="+", type=int, default=[100, 200], help="copy delay T")
    p.add_argument("--steps-adding", type=int, default=6000)
    p.add_argument("--steps-copy", type=int, default=6000)
    p.add_argument("--steps-digits", type=int, default=3000)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-irnn", type=float, default=1e-4)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="processes, one torch thread each")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    p.add_argument("--name", default="long_range")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Row]:
    a = parse_args(argv)
    cases = cases_for(a)
    torch.set_num_threads(1)  # as in every worker, so the header names the threads used
    budget = (
        f"steps per case: adding {a.steps_adding}, copy {a.steps_copy}, digits {a.steps_digits}; "
        f"batch {a.batch}, Adam lr {a.lr} (IRNN {a.lr_irnn}), clip 1.0, hidden {a.hidden}; "
        f"{a.jobs} processes x 1 thread"
    )
    data = "generated adding/copy sequences (seeded; test sets of 1,000); sklearn digits 80/20"
    meta = metadata("long_range", budget, data)
    rows: list[Row] = []
    start = time.perf_counter()
    with ProcessPoolExecutor(a.jobs, mp_context=get_context("spawn")) as pool:
        for row in pool.map(run_case, cases):
            rows.append(row)
            solved_at, took = row["steps_to_solve"], row["seconds"]
            print(f"{row['name']}: {row['metric']} {row['value']} solved at {solved_at} ({took} s)")
            write_files(a.out, a.name, meta, rows, len(cases), markdown(meta, rows, len(cases)))
    print(summary(rows, len(cases)) + f" ({time.perf_counter() - start:.0f} s)")
    return rows


def markdown(meta: dict[str, object], rows: list[Row], planned: int) -> str:
    head = [
        "# Long-range memory: tanh RNN, IRNN, LSTM and GRU on the same budget",
        "",
        f"{meta['machine']}; {meta['date']}; {meta['budget']}; {meta['data']}.",
        "Adding: test MSE (always answering 1: 0.167; solved < 0.01). Copy: recall accuracy on "
        "the 10 symbols (solved >= 0.99). Digits: test accuracy (solved >= 0.9).",
        "",
    ]
    return "\n".join([*head, *table(rows), "", summary(rows, planned), ""])


if __name__ == "__main__":
    main()
