"""Watching a run's evaluations from outside the code that builds its Trainer: a search's
pruner reports each validation to its study and may stop the trial by raising, without any
task's training function knowing about searches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

Watcher = Callable[[int, dict[str, float]], None]  # (step, validation metrics)

_WATCHERS: ContextVar[tuple[Watcher, ...]] = ContextVar("elman_watchers", default=())


@contextlib.contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Call ``watcher(step, metrics)`` after every evaluation of every Trainer run inside
    the block (once the checkpoint of that step is written, so a watcher that raises leaves a
    run that resumes). An exception it raises stops training and propagates."""
    token = _WATCHERS.set((*_WATCHERS.get(), watcher))
    try:
        yield
    finally:
        _WATCHERS.reset(token)


def notify(step: int, metrics: dict[str, float]) -> None:
    """Tell every watcher of this context about the evaluation at ``step``."""
    for watcher in _WATCHERS.get():
        watcher(step, metrics)


__all__ = ["Watcher", "notify", "watching"]
