"""One trial of a search: the task's own `elman train` function run on the sampled values,
its validations reported to the study (which may prune it), the outcome told back."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from elman.tasks.spec import TaskSpec
from elman.train.checkpoint import read_meta
from elman.train.config import monitor_sign
from elman.train.watch import watching
from elman.tune.space import Space

BEAT = 20.0  # seconds between a running trial's heartbeats (user attribute "beat")
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def train_parser(spec: TaskSpec) -> argparse.ArgumentParser:
    """The `elman train TASK` parser of ``spec``'s task, built alone."""
    root = argparse.ArgumentParser(prog="elman")
    sub = root.add_subparsers(dest="command")
    train = sub.add_parser("train").add_subparsers(dest="task")
    spec.commands().add_parsers(train, sub)
    return train.choices[spec.name]


def base_namespace(spec: TaskSpec, values: Mapping[str, Any]) -> argparse.Namespace:
    """The parsed `elman train TASK` options at their defaults, then ``values`` (option
    values by dest, e.g. from a parsed command line); an unknown name is an error."""
    parser = train_parser(spec)
    args = argparse.Namespace()  # not parsed: a required positional (forecast's DATA) may be
    for action in parser._actions:  # in ``values`` only
        if action.dest not in (argparse.SUPPRESS, "help"):
            setattr(args, action.dest, action.default)
    for key, value in parser._defaults.items():  # set_defaults: the train function, presets
        setattr(args, key, value)
    unknown = sorted(set(values) - set(vars(args)))
    if unknown:
        raise ValueError(
            f"options: `elman train {spec.name}` has no option(s) {', '.join(unknown)}"
        )
    for key, value in values.items():
        setattr(args, key, list(value) if isinstance(value, tuple) else value)
    return args


@dataclass(frozen=True)
class Setup:
    """What every trial of one study shares (plain values, so it crosses to workers)."""

    task: str
    values: dict[str, Any]  # the `elman train TASK` options every trial starts from
    space: Space
    objective: str  # the validation metric, in TrainConfig.monitor's syntax
    out: str  # the study's folder; trial k trains in out/trials/k
    keep: str  # "all" or "best": the run folders kept
    cv: int = 1  # >1: each trial trains once per validation fold; its value is their mean
    prune_after: int = 1  # reports a trial makes before the pruner may stop it

    @property
    def sign(self) -> int:
        return monitor_sign(self.objective)

    def trial_dir(self, number: int) -> Path:
        return Path(self.out) / "trials" / f"{number:04d}"

    def run_dir(self, number: int, fold: int = 0) -> Path:
        """Where trial ``number`` trains (with cross-validation, fold ``fold``'s run)."""
        folder = self.trial_dir(number)
        return folder / f"fold{fold}" if self.cv > 1 else folder


class Outcome(Exception):
    """How a trial ended other than with a value (pruned or failed), with the reason."""

    def __init__(self, state: TrialState, reason: str):
        super().__init__(reason)
        self.state, self.reason = state, reason


def run_trial(setup: Setup, spec: TaskSpec, trial: optuna.Trial) -> float:
    """Train one sampled configuration; its best monitored validation value (with
    cross-validation, the mean over folds of each fold's best). Pruning and failure are
    raised as ``Outcome``."""
    model, train = setup.space.sample(trial)
    args = base_namespace(spec, setup.values)
    for key, value in (model | train).items():
        setattr(args, key, value)
    args.overwrite, args.no_progress, args.monitor = True, True, setup.objective
    name = setup.objective.lstrip("+-")
    report = Reporter(trial, name, setup.prune_after)
    if setup.cv == 1:
        return _train(args, setup.run_dir(trial.number), name, report)
    found = []
    for fold in range(setup.cv):  # the folds report, not the runs: one scale for the pruner
        args.valid_fold = fold
        found.append(_train(args, setup.run_dir(trial.number, fold), name, None))
        report(fold, {name: sum(found) / len(found)}, f"after fold {fold}")
    return sum(found) / len(found)


class Reporter:
    """Validation values told to the study; the pruner may stop the trial once it has made
    ``after`` reports (a few validations in, not on the first noisy one)."""

    def __init__(self, trial: optuna.Trial, name: str, after: int):
        self.trial, self.name, self.after, self.made = trial, name, after, 0

    def __call__(self, step: int, metrics: dict[str, float], when: str | None = None) -> None:
        value = metrics.get(self.name)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), step)
        self.made += 1
        if self.made >= self.after and self.trial.should_prune():
            when = when or f"at step {step}"
            raise Outcome(TrialState.PRUNED, f"pruned {when} ({self.name} {value:.4g})")


def _train(args: argparse.Namespace, out: Path, name: str, report: Reporter | None) -> float:
    """Run the task's train function into ``out`` (its stdout to train.log); the best
    checkpoint's ``name``."""
    args.out = str(out)
    out.mkdir(parents=True, exist_ok=True)
    with (
        open(out / "train.log", "w") as log,
        contextlib.redirect_stdout(log),
        watching(report) if report else contextlib.nullcontext(),
    ):
        try:
            args.train(args)
        except Outcome:
            raise
        except Exception as e:  # a trial's error is recorded; the study goes on
            raise Outcome(TrialState.FAIL, one_line(e)) from None
    return best_value(out, name)


def best_value(out: Path, name: str) -> float:
    """The monitored metric of run ``out``'s best checkpoint."""
    path = out / "best.safetensors"
    if not path.exists():
        raise Outcome(TrialState.FAIL, "the run wrote no best checkpoint (no evaluation ran)")
    value = read_meta(path).get("metrics", {}).get(name)
    if value is None or not math.isfinite(value):
        raise Outcome(TrialState.FAIL, f"the best checkpoint reports no finite {name}")
    return float(value)


def one_line(e: BaseException) -> str:
    text = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


@contextlib.contextmanager
def heartbeat(trial: optuna.Trial):
    """Record who runs ``trial`` and, every ``BEAT`` seconds, that it still runs: a study
    resumed later fails what a dead worker left running (``stale``)."""
    trial.set_user_attr("worker", WORKER)
    trial.set_user_attr("beat", time.time())
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(BEAT):
            with contextlib.suppress(Exception):  # a missed beat only makes it look older
                trial.set_user_attr("beat", time.time())

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def tidy(setup: Setup, study: optuna.Study, number: int) -> None:
    """With keep="best", remove trial ``number``'s folder unless it is the best so far."""
    if setup.keep != "best":
        return
    try:
        best = study.best_trial.number
    except ValueError:  # no completed trial yet
        best = None
    if best != number:
        shutil.rmtree(setup.trial_dir(number), ignore_errors=True)


__all__ = [
    "BEAT",
    "WORKER",
    "Outcome",
    "Reporter",
    "Setup",
    "base_namespace",
    "best_value",
    "heartbeat",
    "one_line",
    "run_trial",
    "tidy",
    "train_parser",
]
