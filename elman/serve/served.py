"""A trained run as the server sees it: what it answers (its endpoints) and how its
streaming sessions open, step, save and restore.

Each task family subclasses ``Served``. A session's state lives in a stream object of
``elman.tasks``; ``step`` feeds a batch of sessions at once (one forward pass) and must
leave every stream untouched when it raises, so a failed batch can be retried one by one.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from elman.data.scaling import FLOAT32_MAX  # networks read float32: past it is infinity
from elman.serve.config import Limits
from elman.tasks.spec import Run


class RequestError(ValueError):
    """Bad input from a client: the server answers ``status`` with ``message`` as JSON."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def check_steps(field: str, count: int, limits: Limits) -> None:
    """An empty or over-long sequence is the client's error."""
    if count < 1:
        raise RequestError(f"{field}: expected at least one step, got none")
    if count > limits.steps:
        raise RequestError(f"{field}: {count} steps is over this server's limit of {limits.steps}")


def check_finite(field: str, reply: object) -> None:
    """JSON has no NaN or infinity, so a reply holding one cannot be sent: it comes of an
    input the model cannot read (a value far outside its training data), the client's error."""
    if not _finite(reply):
        raise RequestError(
            f"{field}: the model's answer to this input is not finite (NaN or infinity); the "
            "input is too far outside the data it was trained on"
        )


def _finite(x: object) -> bool:
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list | tuple):
        return all(_finite(v) for v in x)
    return True


def check_count(field: str, count: int, limits: Limits) -> None:
    if count < 1:
        raise RequestError(f"{field}: expected at least one input, got none")
    if count > limits.batch:
        raise RequestError(f"{field}: {count} inputs is over this server's limit of {limits.batch}")


def one_of(body, fields: tuple[str, str], wanted: str) -> list:
    """The one field of ``fields`` a request gave; it must be ``wanted``."""
    given = [f for f in fields if getattr(body, f) is not None]
    if given != [wanted]:
        raise RequestError(f"this model reads `{wanted}`; the request gave {given or 'nothing'}")
    return getattr(body, wanted)


def split_back(rows: list, sizes: list[int]) -> list[list]:
    out, start = [], 0
    for n in sizes:
        out.append(rows[start : start + n])
        start += n
    return out


@dataclass
class Chunk:
    """One session's parsed step: ``data`` for its stream, ``key`` to batch it by."""

    data: Any
    key: Hashable


class Served:
    """One model directory, opened as a ``Run`` (``elman.tasks.spec``). Subclasses set
    ``endpoints`` and ``takes`` (the step field their sessions read: "text", "values",
    "frames" or "tokens", or None)."""

    endpoints: tuple[str, ...] = ()
    takes: str | None = None
    streams_tokens = False  # whether ``generate`` yields tokens one by one (SSE)
    why = ""  # why a model of a task with sessions cannot stream, when it cannot

    def __init__(self, name: str, run: Run) -> None:
        self.name, self.run = name, run
        self.path, self.model, self.meta = run.path, run.model, run.meta

    @property
    def task(self) -> str:
        return self.run.task

    def info(self) -> dict:
        described = self.run.describe()
        return {
            "name": self.name,
            "task": self.task,
            "endpoints": list(self.endpoints),
            "sessions": self.takes is not None,
            "session_input": self.takes,
        } | {k: v for k, v in described.items() if k != "task"}

    # ---- sessions -------------------------------------------------------------------------
    def check_streams(self) -> None:
        if self.takes is None:
            because = f": {self.why}" if self.why else ""
            raise RequestError(f"model {self.name!r} ({self.task}) cannot stream{because}", 400)

    def session_options(self, options: dict) -> dict:
        """A session's options, validated (raises ``RequestError``), as they will be stored."""
        self.check_streams()
        if options:
            raise RequestError(f"options: a {self.task} session takes none, got {sorted(options)}")
        return {}

    def open(self, options: dict) -> Any:
        """A fresh stream for a session opened with (validated) ``options``."""
        raise NotImplementedError

    def restore(self, options: dict, data: bytes) -> Any:
        """The stream a session saved as ``data`` (a model that cannot stream raises
        ``RequestError``: its directory now holds another model than the session's)."""
        self.check_streams()
        raise NotImplementedError

    def parse(self, stream: Any, inputs: Any, limits: Limits) -> Chunk:
        """A session step's inputs, validated and encoded (raises ``RequestError``)."""
        raise NotImplementedError

    def step(self, streams: list[Any], chunks: list[Any], options: list[dict]) -> list[dict]:
        """Feed each stream its chunk, all in one pass; one reply per stream."""
        raise NotImplementedError

    # ---- stateless endpoints -------------------------------------------------------------
    def parse_request(self, endpoint: str, body: Any, limits: Limits) -> Any:
        """A request to ``endpoint``, validated and encoded, ready to batch with others."""
        raise RequestError(f"model {self.name!r} ({self.task}) does not answer {endpoint}", 400)

    def answer(self, endpoint: str, jobs: list[Any]) -> list[dict]:
        """Answers to parsed requests, in order (one forward pass where the model allows)."""
        raise NotImplementedError

    def generate(self, request: Any, limits: Limits) -> Iterator[str] | dict:
        """Tokens one at a time (``streams_tokens``), or the whole reply."""
        raise RequestError(f"model {self.name!r} ({self.task}) does not generate", 400)


__all__ = [
    "FLOAT32_MAX",
    "Chunk",
    "RequestError",
    "Served",
    "check_count",
    "check_finite",
    "check_steps",
    "one_of",
    "split_back",
]
