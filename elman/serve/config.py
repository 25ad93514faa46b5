"""What ``elman serve`` runs with: where it listens, who may call it, and how much any one
request may ask for. Validated here, at the boundary, so the app itself can trust it."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

PERSIST = ("step", "shutdown")
TOKEN_ENV = "ELMAN_TOKENS"  # comma-separated; one token per client
MIN_TOKEN = 16  # characters: a short token is guessable
MAX_THREADS = 1024  # torch takes a C int, and more threads than cores only slow it down


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def _positive(name: str, value: object, high: int | None = None) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int) or value < 1
    if bad or (high is not None and value > high):  # type: ignore[operator]
        expected = "an integer >= 1" if high is None else f"an integer in [1, {high}]"
        raise ValueError(f"{name}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class Limits:
    """Per-request and per-server bounds; past them a request gets a 4xx JSON reason.

    body_bytes: a request body. steps: observations or tokens in one request (a session
    step, a text's characters or words, a series' values, a sequence to classify or tag).
    generate: tokens or steps one generation may ask for. batch: inputs in one stateless
    request. sessions: open sessions on the server; per_client: open sessions per token.
    """

    body_bytes: int = 1 << 20
    steps: int = 10_000
    generate: int = 2_000
    batch: int = 256
    sessions: int = 10_000
    per_client: int = 1_000

    def __post_init__(self) -> None:
        for name in ("body_bytes", "steps", "generate", "batch", "sessions", "per_client"):
            _positive(f"limits.{name}", getattr(self, name))


@dataclass(frozen=True)
class ServeConfig:
    """host/port: where to listen (loopback by default). tokens: API tokens, one per client;
    any non-loopback host needs at least one. state: the SQLite file that keeps sessions
    across restarts. persist: "step" writes a session's state after every step (nothing
    is lost even if the process is killed), "shutdown" only when the server stops cleanly.
    max_batch: concurrent requests run as one forward pass (1: micro-batching off).
    threads: torch's intra-op threads (None: torch's default)."""

    host: str = "127.0.0.1"
    port: int = 8000
    tokens: tuple[str, ...] = ()
    state: Path = Path("elman-sessions.sqlite")
    persist: str = "step"
    max_batch: int = 64
    threads: int | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ValueError(f"port: expected an integer in [0, 65535], got {self.port!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: expected an integer in [0, 65535], got {self.port!r}")
        if self.persist not in PERSIST:
            raise ValueError(f"persist: expected one of {', '.join(PERSIST)}, got {self.persist!r}")
        _positive("max_batch", self.max_batch)
        if self.threads is not None:
            _positive("threads", self.threads, MAX_THREADS)
        for token in self.tokens:
            if len(token) < MIN_TOKEN or not token.isprintable() or " " in token:
                raise ValueError(
                    f"token: expected at least {MIN_TOKEN} printable characters without "
                    f"spaces, got one of {len(token)} characters"
                )
        if not self.tokens and not is_loopback(self.host):
            raise ValueError(
                f"host: {self.host!r} accepts connections from other machines, so an API "
                f"token is required: pass --token (one per client) or set {TOKEN_ENV}"
            )


def tokens_from(given: list[str] | None, env: dict[str, str] | None = None) -> tuple[str, ...]:
    """Tokens from the command line, else from ``ELMAN_TOKENS`` (comma-separated)."""
    if given:
        return tuple(given)
    raw = (os.environ if env is None else env).get(TOKEN_ENV, "")
    return tuple(t.strip() for t in raw.split(",") if t.strip())


__all__ = ["PERSIST", "TOKEN_ENV", "Limits", "ServeConfig", "is_loopback", "tokens_from"]
