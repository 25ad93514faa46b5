"""Choose char-LM sizes for a CPU wall-clock budget by replaying its step counts elsewhere.

A CPU budget of M minutes buys a config ``M * 60 / seconds_per_step`` optimizer steps; how
good the model is after those steps does not depend on where they run. This script measures
seconds per step of each candidate on this machine (``--time``), or trains each candidate
for the step count a given CPU rate buys (``--train``, on any device, e.g. a GPU, several
candidates at once), with the benchmark's schedule (warm-up, cosine to min_lr), clipping,
TBPTT and validation. The winners are then confirmed on the CPU by bench/charlm.py.

    python bench/charlm_sweep.py --time CANDIDATES.json > rates.json
    python bench/charlm_sweep.py --train rates.json --minutes 10 60 --device cuda > runs.jsonl
    python bench/charlm_sweep.py --report runs.jsonl --name charlm_sweep_3min
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from harness import markdown_table, metadata, write_results

from elman.tasks.lm import charlm
from elman.tasks.lm.run import CHARLM
from elman.train import TrainConfig, Trainer, seed_everything
from elman.train.trainer import LOG

EVAL_SHARE = 0.03  # of the budget, spent on the benchmark's evaluations


def candidate(spec: dict) -> tuple[charlm.CharLMConfig, TrainConfig]:
    model = {k: v for k, v in spec.items() if k in charlm.CharLMConfig.__dataclass_fields__}
    train = {k: v for k, v in spec.items() if k in TrainConfig.__dataclass_fields__}
    config = charlm.CharLMConfig(**model)
    return config, TrainConfig(**{**CHARLM.train_defaults, "progress": False, **train})


def seconds_per_step(spec: dict, text: str, steps: int = 8) -> float:
    config, train = candidate(spec)
    seed_everything(0)
    trainer = Trainer(charlm.CharLMTask(text, config), train, "/tmp/elman-sweep")
    times = []
    for i in range(steps):
        start = time.perf_counter()
        trainer._step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def train_steps(spec: dict, text: str, steps: int, device: str) -> dict:
    """Train ``spec`` for ``steps`` steps on ``device`` with the trainer (the benchmark's
    schedule by step, clipping, TBPTT); validation nats/char six times along the way."""
    config, c = candidate(spec)
    seed_everything(c.seed)
    task = charlm.CharLMTask(text, config, c.seed)
    if "forget_bias" in spec:
        _set_forget_bias(task.model.rnn, spec["forget_bias"])
    out = Path(tempfile.mkdtemp(prefix="elman-sweep-"))
    train = replace(c, steps=steps, eval_every=max(1, steps // 6), device=device)
    Trainer(task, train, out).fit()
    log = [json.loads(line) for line in (out / LOG).read_text().splitlines()]
    shutil.rmtree(out)
    curve = [(r["step"], r["val_loss"]) for r in log if "val_loss" in r]
    return {"spec": spec, "steps": steps, "curve": curve, "val": curve[-1][1]}


def _set_forget_bias(rnn, value: float) -> None:
    """b_if + b_hf = value (LSTM gate order i, f, g, o)."""
    h = rnn.hidden_size
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("bias_"):
                p[h : 2 * h] = value if name.startswith("bias_ih") else 0.0


def report(lines: list[dict], name: str, out: Path = Path("bench/results")) -> None:
    """Write the trained candidates as a results file (``out/name.{json,md}``)."""
    rows = [
        {
            "name": " ".join(f"{k}={v}" for k, v in r["spec"].items()),
            "metric": "val_nats_per_char",
            "value": round(r["val"], 4),
            "steps": r["steps"],
            "cpu_minutes": r["minutes"],
            "curve": r["curve"],
        }
        for r in sorted(lines, key=lambda r: r["val"])
    ]
    budgets = sorted({r["minutes"] for r in lines})
    meta = metadata(
        "charlm_sweep",
        f"the steps {', '.join(f'{m:g}' for m in budgets)} min of 2-thread CPU time buy",
        "bundled Shakespeare (8 plays, 1,036,467 chars), last 10% held out",
    )
    body = [
        [r["name"], f"{r['value']:.4f}", str(r["steps"]), f"{r['cpu_minutes']:g}"] for r in rows
    ]
    md = [
        f"# Character LM candidates: {meta['budget']}",
        "",
        f"{meta['machine']}; {meta['date']}; {meta['data']}.",
        "",
        *markdown_table(["candidate", "val nats/char", "steps", "CPU min"], body),
    ]
    write_results(out, name, meta, rows, len(rows), "\n".join(md) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--time", help="JSON list of candidate specs: print each one's s/step here")
    p.add_argument(
        "--train", help="JSON from --time (entries may add minutes): train each for its steps"
    )
    p.add_argument("--minutes", type=float, nargs="+", default=[10.0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", type=int, nargs="*", help="indices of the candidates to train")
    p.add_argument("--report", help="JSON lines from --train: write them as a results file")
    p.add_argument("--name", default="charlm_sweep", help="results stem for --report")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.report:
        lines = Path(args.report).read_text().splitlines()
        report([json.loads(line) for line in lines if line.strip()], args.name)
        return
    text, _, _ = charlm.text_source(None)
    if args.time:
        specs = json.loads(Path(args.time).read_text())
        rates = [{"spec": s, "s_per_step": seconds_per_step(s, text)} for s in specs]
        json.dump(rates, sys.stdout, indent=1)
        return
    rates = json.loads(Path(args.train).read_text())
    for i, r in enumerate(rates):
        if args.only and i not in args.only:
            continue
        for m in [r["minutes"]] if "minutes" in r else args.minutes:
            steps = int(m * 60 * (1 - EVAL_SHARE) / r["s_per_step"])
            start = time.perf_counter()
            out = train_steps(r["spec"], text, steps, args.device)
            out |= {"minutes": m, "wall": round(time.perf_counter() - start, 1)}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
