"""Hyperparameter search for every task, on Optuna: `elman tune TASK ...` and ``tune(...)``.

A trial is the task's own `elman train TASK` with sampled values (``elman.tune.space``), its
validations reported to the study so a pruner can stop it early (``elman.train.watch``). The
study lives in a storage (a journal file by default, or a database URL) that any number of
workers, on this machine or others, share; a study stopped at any point, even by kill -9,
resumes where it was, losing at most the trials that were running (they are queued again).

    study = tune("classify", {"ucr": "GunPoint", "steps": 300}, trials=20, out="runs/gp")
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from elman.files import output_dir

KEEP = ("best", "all")
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "halving", "hyperband", "none")


def plain(value: Any) -> bool:
    """Whether ``value`` is an option value (not a function or parser the CLI keeps)."""
    if isinstance(value, list | tuple):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def tune(
    task: str,
    data: Mapping[str, Any],
    space: Any = None,
    *,
    trials: int = 20,
    out: str | Path,
    timeout: float | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    keep: str = "best",
    seed: int = 0,
    threads: int | None = None,
    objective: str | None = None,
    cv: int = 1,
    prune_after: int = 1,
    progress: bool = False,
):
    """Search ``task``'s hyperparameters; the Optuna study (its summary in ``out``).

    ``data``: option values of `elman train TASK` by name (its data options, and any fixed
    training value such as ``steps``); ``space``: a ``Space``, a mapping in the space-file
    form, a space file's path, or None for the task's default space; ``trials``: how many the
    study should hold in all (a resumed study runs only the rest); ``workers`` processes share
    ``threads`` (default: every core) evenly; ``keep``: "best" removes the other trials'
    run folders, "all" keeps them; ``objective``: the validation metric (default: the
    task's); ``cv`` > 1 trains each trial once per validation fold (the task's
    ``valid_fold`` option) and searches on the mean, for training sets so small that one
    held-out split cannot tell configurations apart; ``prune_after``: the validation
    reports (with ``cv``, folds) a trial makes before the pruner may stop it."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ImportError("elman tune needs Optuna: pip install 'elman[tune]'") from None
    from elman.tasks.registry import spec as task_spec
    from elman.tune.space import Space, default_space, read_space
    from elman.tune.study import Plan
    from elman.tune.trial import Setup, base_namespace

    found = task_spec(task)
    if isinstance(space, Space):
        chosen = space
    elif space is None:
        chosen = default_space(found)
    elif isinstance(space, Mapping):
        chosen = Space.parse(space, "the given space")
    else:
        chosen = read_space(space)
    chosen.check(found)
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    for name, value in (("cv", cv), ("prune_after", prune_after)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    values = dict(data)
    args = base_namespace(found, values)  # an unknown option is refused before any trial
    if cv > 1 and not hasattr(args, "valid_fold"):
        raise ValueError(f"cv {cv}: `elman train {task}` has no --valid-fold to cross-validate")
    folder = output_dir(out, "--out")
    folder.mkdir(parents=True, exist_ok=True)
    setup = Setup(
        task, values, chosen, objective or found.objective, str(folder), keep, cv, prune_after
    )
    plan = Plan(trials, sampler, pruner, storage, study, timeout, seed)
    return run_study(plan, setup, workers, threads or os.cpu_count() or 1, progress)


def run_study(plan, setup, workers: int, threads: int, progress: bool):
    """Recover what a dead worker left, run the workers, write the summary; the study."""
    from elman.tune.report import summarise
    from elman.tune.study import open_study, recover

    study = open_study(plan, setup)
    recover(study)
    share = max(1, threads // workers)
    with _progress(plan, setup, progress):
        if workers == 1:
            _work(plan, setup, share)
        else:
            _spawn(plan, setup, workers, share)
    summarise(study, setup)
    return study


def _work(plan, setup, threads: int) -> int:
    import torch

    from elman.tune.study import work

    before = torch.get_num_threads()  # in the caller's process, leave its setting as it was
    torch.set_num_threads(threads)
    try:
        return work(plan, setup)
    finally:
        torch.set_num_threads(before)


def _spawn(plan, setup, workers: int, threads: int) -> None:
    """``workers`` processes, each its own sampler seed (the same seed would propose the
    same values from the same history)."""
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_work, args=(replace(plan, seed=plan.seed + k), setup, threads))
        for k in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:  # a trial's own error never stops a worker: this is the study's storage or a bug
        raise ValueError(
            f"{len(failed)} of {workers} workers stopped with an error (exit codes {failed}); "
            "the study is kept: run the same command again to resume it"
        )


class _progress:
    """A progress bar over the study's finished trials, polled from its storage."""

    def __init__(self, plan, setup, shown: bool):
        self.plan, self.setup, self.shown = plan, setup, shown
        self.stop = threading.Event()

    def __enter__(self):
        if self.shown:
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def _poll(self) -> None:
        from tqdm import tqdm

        from elman.tune.study import finished, open_study

        study = open_study(self.plan, self.setup)
        bar = tqdm(total=self.plan.trials, unit="trial", dynamic_ncols=True)
        try:
            while True:
                bar.n = finished(study)
                with contextlib.suppress(ValueError):  # no trial has completed yet
                    bar.set_postfix(best=f"{study.best_value:.4g}")
                bar.refresh()
                if self.stop.wait(1.0):
                    return
        finally:
            bar.close()

    def __exit__(self, *exc):
        self.stop.set()
        if self.shown:
            self.thread.join()
        return False


def remove_study(out: str | Path) -> None:
    """Delete a study's folder (``--overwrite``), refusing anything that is not one."""
    folder = Path(out)
    if not folder.exists():
        return
    if not (folder / "study.journal").exists() and not (folder / "trials").exists():
        raise ValueError(f"--out {str(folder)!r} holds no study; refusing to delete it")
    shutil.rmtree(folder)


__all__ = ["KEEP", "PRUNERS", "SAMPLERS", "plain", "remove_study", "run_study", "tune"]
