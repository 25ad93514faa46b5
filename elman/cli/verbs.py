"""The commands every task may answer on a run directory (generate, predict, evaluate,
explain): their shared options, and the dispatch to the handler the run's task registers in
its ``command.HANDLERS``. Nothing here knows a task by name."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from elman.tasks.registry import specs
from elman.tasks.spec import Run, TaskSpec


@dataclass(frozen=True)
class Handler:
    """How a task answers one shared command: ``run(args, loaded_run)`` prints the answer;
    ``reads`` lists the command's optional options (argparse default None) that it reads."""

    run: Callable[[argparse.Namespace, Run], None]
    reads: tuple[str, ...] = ()


def handlers(spec: TaskSpec) -> dict[str, Handler]:
    return getattr(spec.commands(), "HANDLERS", {})


def handler_of(command: str, run: Run) -> Handler:
    """The handler of ``run``'s task for ``command``; a task that does not answer it is a
    ValueError naming the commands that do apply."""
    answers = handlers(run.spec)
    found = answers.get(command)
    if found is None:
        answers = ", ".join(f"`elman {c}`" for c in answers) or "no shared command"
        raise ValueError(
            f"`elman {command}` does not apply to a {run.task} model ({run.path}); it answers "
            f"{answers}"
        )
    return found


def refuse_unread(args: argparse.Namespace, command: str, run: Run) -> Handler:
    """The handler of ``run``'s task for ``command``, after refusing the first optional option
    given that it does not read (some other task's handler reads it)."""
    handler = handler_of(command, run)
    readers: dict[str, list[str]] = {}
    for spec in specs():
        for name in handlers(spec).get(command, Handler(print)).reads:
            readers.setdefault(name, []).append(spec.name)
    for name, tasks in readers.items():
        if getattr(args, name, None) is not None and name not in handler.reads:
            raise ValueError(
                f"--{name.replace('_', '-')} is for {' and '.join(tasks)} models; "
                f"{args.dir} holds a {run.task} model"
            )
    return handler


__all__ = ["Handler", "handler_of", "handlers", "refuse_unread"]
