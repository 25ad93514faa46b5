"""What every benchmark shares: interleaved timing on a noisy machine and the results files.

Timing: the machines are shared, so sides are compared in one process, warmed up first, then
called in interleaved rounds, each in a fresh random order, and compared by medians.

Results: ``<out>/<stem>.json`` in the project's one shape (``benchmark``, ``machine``, ``date``,
``budget``, ``data``, ``rows``; ``target``/``better``/``met`` on every row that has a target)
and ``<out>/<stem>.md`` beside it, rewritten after every row so a cut-off run leaves its rows,
marked ``"partial": true``.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

Step = Callable[[], None]
Row = dict[str, object]


@dataclass(frozen=True)
class Timing:
    """How long to time each configuration.

    budget: seconds per side: rounds go on until rounds x the slowest side's median reach it.
    warmup: seconds of untimed calls per side first (at least one call, at most ten).
    min_reps, max_reps: bounds on the number of interleaved rounds.
    """

    budget: float
    warmup: float
    min_reps: int
    max_reps: int

    def __post_init__(self) -> None:
        if self.budget < 0 or self.warmup < 0:
            raise ValueError(f"budget and warmup must be >= 0, got {self.budget}, {self.warmup}")
        if not 1 <= self.min_reps <= self.max_reps:
            raise ValueError(
                f"need 1 <= min_reps <= max_reps, got {self.min_reps}, {self.max_reps}"
            )

    def describe(self, threads: int | str) -> str:
        return (
            f"interleaved rounds until rounds x the slowest side's median reach ~{self.budget:g} s "
            f"({self.min_reps}-{self.max_reps} rounds) after ~{self.warmup:g} s warm-up, "
            f"medians; {threads} threads"
        )


def time_call(fn: Step) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def warm_up(steps: dict[str, Step], seconds: float) -> None:
    """Call each side at least once and until ``seconds`` are spent on it (at most 10 calls)."""
    for fn in steps.values():
        calls, spent = 0, 0.0
        while calls < 1 or (spent < seconds and calls < 10):
            spent += time_call(fn)
            calls += 1


def measure(steps: dict[str, Step], timing: Timing) -> dict[str, list[float]]:
    """Seconds per call of every side, one per round, from interleaved rounds in a fresh
    seeded random order each.

    Rounds stop once rounds x the slowest side's median reach ``timing.budget`` (between
    ``min_reps`` and ``max_reps`` rounds), so stalls from other tenants add rounds instead of
    cutting them short; a machine that stalls every call still stops after 4 x budget per side.
    """
    names = list(steps)
    times: dict[str, list[float]] = {n: [] for n in names}
    rounds, start, cap = 0, time.perf_counter(), 4 * timing.budget * len(names)

    def done() -> bool:
        if rounds < timing.min_reps:
            return False
        slowest = max(statistics.median(ts) for ts in times.values())
        spent = time.perf_counter() - start
        return rounds >= timing.max_reps or rounds * slowest >= timing.budget or spent >= cap

    order = random.Random(0)
    while not done():
        # A fresh order each round: with plain rotation every side always follows the same
        # neighbour, whose cache footprint then biases it the same way every round.
        for name in order.sample(names, len(names)):
            times[name].append(time_call(steps[name]))
        rounds += 1
    return times


def machine() -> str:
    """E.g. "2-core CPU (AMD EPYC), torch 2.13.0+cpu, 2 threads": usable cores, CPU model,
    torch version and the threads torch computes with."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = torch.get_num_threads()
    return (
        f"{cores}-core CPU{f' ({cpu})' if cpu else ''}, torch {torch.__version__}, "
        f"{threads} thread{'s' if threads > 1 else ''}"
    )


def metadata(benchmark: str, budget: str, data: str) -> dict[str, object]:
    """The header of a results file, dated now (UTC)."""
    return {
        "benchmark": benchmark,
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "budget": budget,
        "data": data,
    }


def _shortfall(row: Row) -> float:
    """value / target for "higher" rows, target / value for "lower": below 1 misses."""
    value, target = float(row["value"]), float(row["target"])  # type: ignore[arg-type]
    if row["better"] == "higher":
        return value / target if target else float("inf")
    if row["better"] == "lower":
        return target / value if value else float("inf")
    raise ValueError(
        f"row {row['name']!r}: better must be 'higher' or 'lower', got {row['better']!r}"
    )


def summary(rows: list[Row], planned: int) -> str:
    """Targets met, the worst row relative to its target, the misses, and whether complete."""
    targeted = [r for r in rows if "target" in r]
    met = sum(bool(r["met"]) for r in targeted)
    text = f"Targets met: {met}/{len(targeted)}."
    if targeted:
        worst = min(targeted, key=_shortfall)
        text += f" Worst: {worst['value']:.3f} ({worst['name']}, target {worst['target']:g})."
        missed = [str(r["name"]) for r in targeted if not r["met"]]
        if missed:
            more = f"; and {len(missed) - 8} more" if len(missed) > 8 else ""
            text += " Missed: " + "; ".join(missed[:8]) + more + "."
    if len(rows) < planned:
        text += f" Partial run: {len(rows)} of {planned} rows."
    return text


def markdown_table(head: list[str], body: list[list[str]], left: int = 1) -> list[str]:
    """A markdown table; the first ``left`` columns are left-aligned, the rest right-aligned."""
    rule = ["---" if i < left else "---:" for i in range(len(head))]
    return ["| " + " | ".join(cells) + " |" for cells in (head, rule, *body)]


def write_results(
    out: Path, stem: str, meta: dict[str, object], rows: list[Row], planned: int, md: str
) -> None:
    """Rewrite ``<stem>.json`` and ``<stem>.md``; a partial run is marked ``"partial": true``."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "rows": rows}
    if len(rows) < planned:
        doc["partial"] = True
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / f"{stem}.md").write_text(md)
