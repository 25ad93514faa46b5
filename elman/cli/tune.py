"""`elman tune TASK [the task's train options] --trials N --out DIR`: a hyperparameter search
whose trials are `elman train TASK` runs (``elman.tune``)."""

from __future__ import annotations

import argparse
import os

from elman.tasks.options import integer, number
from elman.tune import KEEP, PRUNERS, SAMPLERS, plain

# options of `elman tune` itself, kept out of the values every trial trains with
OWN = (
    "trials",
    "timeout",
    "space",
    "sampler",
    "pruner",
    "workers",
    "threads",
    "storage",
    "study",
    "keep",
    "sampler_seed",
    "objective",
    "cv",
    "prune_after",
)
# parsed train options that are the command's business, not a trial's
NOT_VALUES = ("out", "overwrite", "config", "no_progress", "command", "task")


def add_parsers(sub: argparse._SubParsersAction, train_parsers: dict) -> None:
    """`elman tune TASK` for every task: its train options, then the search's."""
    tune = sub.add_parser("tune", help="search a task's hyperparameters (Optuna)").add_subparsers(
        dest="task", required=True
    )
    for name, train in train_parsers.items():
        p = tune.add_parser(
            name,
            parents=[train],
            add_help=False,
            help=f"search `elman train {name}`'s hyperparameters",
            description="Every `elman train` option of the task fixes that value for all "
            "trials (unless the space samples it); --out is the study's folder.",
        )
        g = p.add_argument_group("search")
        g.add_argument(
            "--trials", type=integer, default=20, help="trials the study holds in all (default: 20)"
        )
        g.add_argument(
            "--timeout",
            type=number,
            default=None,
            help="stop starting trials after S s (default: none)",
        )
        g.add_argument(
            "--space", default=None, help="space file: TOML, YAML or JSON (default: the task's)"
        )
        g.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="(default: tpe)")
        g.add_argument(
            "--sampler-seed", type=integer, default=0, help="the sampler's seed (default: 0)"
        )
        g.add_argument("--pruner", choices=PRUNERS, default="median", help="(default: median)")
        g.add_argument("--objective", default=None, help="validation metric (default: the task's)")
        g.add_argument(
            "--cv",
            type=integer,
            default=1,
            help="train each trial on K validation folds and search on their mean (tasks with "
            "--valid-fold; for training sets too small for one held-out split) (default: 1)",
        )
        g.add_argument(
            "--prune-after",
            type=integer,
            default=1,
            help="validations (with --cv, folds) a trial makes before it may be pruned "
            "(default: 1)",
        )
        g.add_argument(
            "--workers", type=integer, default=1, help="processes on this machine (default: 1)"
        )
        g.add_argument(
            "--threads",
            type=integer,
            default=None,
            help=f"torch threads shared by the workers (default: every core, {os.cpu_count()})",
        )
        g.add_argument(
            "--storage",
            default=None,
            help="where the study lives: a journal file (.journal) or a database URL "
            "(sqlite:///study.db, postgresql://...); default DIR/study.journal. Workers on "
            "other machines join by giving the same storage and --study",
        )
        g.add_argument("--study", default=None, help="study name (default: the task's name)")
        g.add_argument(
            "--keep", choices=KEEP, default="best", help="trial run folders to keep (default: best)"
        )
        p.set_defaults(task_parsers=tune.choices, run_tune=run)


def run(args: argparse.Namespace) -> None:
    """Run the search; print the trials, the best configuration and its test figure."""
    from elman.tune import remove_study, tune
    from elman.tune.report import rows, table

    if args.overwrite:
        remove_study(args.out)
    own = set(OWN) | set(NOT_VALUES)
    values = {k: v for k, v in vars(args).items() if k not in own and plain(v)}
    study = tune(
        args.task,
        values,
        args.space,
        trials=args.trials,
        out=args.out,
        timeout=args.timeout,
        sampler=args.sampler,
        pruner=args.pruner,
        workers=args.workers,
        storage=args.storage,
        study=args.study,
        keep=args.keep,
        seed=args.sampler_seed,
        threads=args.threads,
        objective=args.objective,
        cv=args.cv,
        prune_after=args.prune_after,
        progress=not args.no_progress,
    )
    print(table(rows(study)))
    _print_best(args.out)


def _print_best(out: str) -> None:
    import json
    from pathlib import Path

    summary = json.loads((Path(out) / "summary.json").read_text())
    best = summary.get("best")
    if best is None:
        print("no trial completed: see the note column above")
        return
    print(f"best: trial {best['trial']}, {summary['objective']} {best['value']:.6g}")
    print(f"  configuration: {best['config']} (elman train {summary['task']} --config FILE)")
    print(f"  run: {best['run']}")
    test = summary.get("test", {})
    if "scores" in test:
        print(f"  test (once, after the search): {json.dumps(test['scores'])}")
    else:
        print(f"  test: not scored ({test.get('unavailable', 'no test split')})")


__all__ = ["add_parsers", "run"]
