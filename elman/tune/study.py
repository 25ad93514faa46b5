"""A search's study: where it is stored, how it samples and prunes, and the worker loop that
runs trials until the study has its number (several workers, on one machine or many, share one
study through its storage)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from elman.tasks.registry import spec as task_spec
from elman.tune import PRUNERS, SAMPLERS
from elman.tune.trial import (
    BEAT,
    Outcome,
    Setup,
    heartbeat,
    run_trial,
    tidy,
)

STALE = 6 * BEAT  # a running trial without a heartbeat for this long lost its worker
DONE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class Plan:
    """How to search: trials wanted in all (over every worker and every resume), an optional
    wall-clock limit per call, the sampler, the pruner, the storage URL and study name."""

    trials: int
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None  # None: a journal file in the study's folder
    study: str | None = None  # None: the task's name
    timeout: float | None = None
    seed: int = 0  # the sampler's

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"trials must be an integer >= 1, got {self.trials!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if self.timeout is not None and not (
            isinstance(self.timeout, int | float) and self.timeout > 0
        ):
            raise ValueError(f"timeout must be a number of seconds > 0, got {self.timeout!r}")


def storage_of(url: str | None, out: Path) -> optuna.storages.BaseStorage:
    """The study's storage: a journal file in ``out`` by default; a path ending in .log or
    .journal a journal file there (shared folders work: a lock file guards it); an RDB URL
    (sqlite:///, postgresql://, mysql://) a database every worker can reach."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if url is None:
        url = str(out / "study.journal")
    if "://" in url:
        try:
            return RDBStorage(url, engine_kwargs=_engine(url))
        except ImportError as e:  # the database's driver is missing
            raise ValueError(f"storage {url!r}: {e}") from None
        except Exception as e:  # SQLAlchemy's errors: a bad URL, a server that is not there
            raise ValueError(f"storage {url!r}: cannot open it ({type(e).__name__}: {e})") from None
    path = Path(url)
    if path.suffix not in (".log", ".journal"):
        raise ValueError(
            f"storage {url!r}: expected a journal file (.journal or .log) or a database URL "
            "(sqlite:///study.db, postgresql://..., mysql://...)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return JournalStorage(backend)


def _engine(url: str) -> dict:
    # SQLite: wait for another worker's write lock instead of failing at once
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def sampler_of(plan: Plan, setup: Setup) -> optuna.samplers.BaseSampler:
    if plan.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=plan.seed, n_startup_trials=min(10, plan.trials))
    if plan.sampler == "random":
        return optuna.samplers.RandomSampler(seed=plan.seed)
    if plan.sampler == "grid":
        return optuna.samplers.GridSampler(setup.space.grid(), seed=plan.seed)
    if plan.sampler == "cmaes":
        try:
            import cmaes  # noqa: F401  optuna's CMA-ES needs it
        except ImportError:
            raise ImportError(
                "--sampler cmaes needs the cmaes package: pip install cmaes"
            ) from None
        return optuna.samplers.CmaEsSampler(seed=plan.seed, warn_independent_sampling=False)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {plan.sampler!r}")


def pruner_of(plan: Plan) -> optuna.pruners.BasePruner:
    if plan.pruner == "median":  # compare only once a few trials have reported
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if plan.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if plan.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if plan.pruner == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {plan.pruner!r}")


def open_study(plan: Plan, setup: Setup) -> optuna.Study:
    """The study (created, or loaded when it exists: a resume, or another worker's)."""
    optuna.logging.set_verbosity(logging.WARNING)
    direction = "maximize" if setup.sign > 0 else "minimize"
    study = optuna.create_study(
        storage=storage_of(plan.storage, Path(setup.out)),
        study_name=plan.study or setup.task,
        sampler=sampler_of(plan, setup),
        pruner=pruner_of(plan),
        direction=direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study {study.study_name!r} already exists and {study.direction.name.lower()}s; "
            f"this search would {direction} {setup.objective} (choose another --study)"
        )
    attrs = {"task": setup.task, "objective": setup.objective}
    for key, value in attrs.items():
        found = study.user_attrs.get(key)
        if found is None:
            study.set_user_attr(key, value)
        elif found != value:
            raise ValueError(
                f"study {study.study_name!r} belongs to {key} {found!r}, not {value!r} "
                "(choose another --study or --out)"
            )
    return study


def stale(trial: optuna.trial.FrozenTrial, now: float) -> bool:
    """Whether a RUNNING trial's worker is gone: this machine's process no longer exists, or
    no heartbeat came for ``STALE`` seconds."""
    worker, beat = trial.user_attrs.get("worker", ""), trial.user_attrs.get("beat")
    if beat is None:  # asked for, its first beat not yet written: as old as the trial
        started = trial.datetime_start
        beat = started.timestamp() if started is not None else now
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return True
    return now - float(beat) > STALE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def recover(study: optuna.Study) -> list[int]:
    """Fail the trials a dead worker left running, with the reason, and queue their values
    again so nothing but the interrupted training is lost; the numbers failed."""
    now, failed = time.time(), []
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not stale(t, now):
            continue
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_user_attr(t._trial_id, "error", "interrupted: its worker stopped")
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            if storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
                failed.append(t.number)
    return failed


def finished(study: optuna.Study) -> int:
    """Trials that ended (completed, pruned or failed), not counting interrupted ones."""
    trials = study.get_trials(deepcopy=False, states=DONE)
    return sum(not t.user_attrs.get("interrupted") for t in trials)


def counted(study: optuna.Study) -> int:
    """Trials that count towards the study's number: finished or running."""
    return finished(study) + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def exhausted(study: optuna.Study) -> bool:
    """Whether a grid search has tried every point of its grid."""
    sampler = study.sampler
    return isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(study)


def tell(study: optuna.Study, trial: optuna.Trial, *args, **kwargs) -> None:
    """``study.tell``; the grid sampler's call to ``Study.stop`` once its grid is done, which
    only works inside ``optimize``, is dropped (the trial is stored before it; ``work`` asks
    ``exhausted`` itself)."""
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as e:
        if "Study.stop" not in str(e):
            raise


def work(plan: Plan, setup: Setup) -> int:
    """One worker: run trials until the study has ``plan.trials`` (or the timeout); the
    number this worker ran."""
    study, spec = open_study(plan, setup), task_spec(setup.task)
    start, ran = time.monotonic(), 0
    while counted(study) < plan.trials and not exhausted(study):
        if plan.timeout is not None and time.monotonic() - start > plan.timeout:
            break
        trial = study.ask()
        with heartbeat(trial):
            try:
                value = run_trial(setup, spec, trial)
            except Outcome as o:
                if o.state == TrialState.FAIL:
                    trial.set_user_attr("error", o.reason)
                else:
                    trial.set_user_attr("pruned", o.reason)
                tell(study, trial, state=o.state)
            except BaseException:  # Ctrl-C: the trial is queued again on resume
                trial.set_user_attr("error", "interrupted")
                trial.set_user_attr("interrupted", True)
                tell(study, trial, state=TrialState.FAIL)
                study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
                raise
            else:
                tell(study, trial, value)
        tidy(setup, study, trial.number)
        ran += 1
    return ran


__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "Plan",
    "counted",
    "finished",
    "open_study",
    "recover",
    "stale",
    "storage_of",
    "work",
]
