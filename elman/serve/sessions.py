"""Open streaming sessions: who owns each, its stream, and keeping them in SQLite.

Ownership: with API tokens, each token is one client. A session belongs to the token that
opened it (the store keeps a SHA-256 of the token, never the token), and any other token
is told the session does not exist, exactly as for an unknown id, so ids cannot be probed.
Without tokens (loopback only) every caller is the same client. Ids are 192 random bits
(``secrets``), so they cannot be guessed either.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from elman.serve.config import Limits
from elman.serve.served import RequestError, Served
from elman.serve.store import Row, Store

log = logging.getLogger("elman.serve")


def owner_of(token: str | None) -> str:
    """How a client is recorded: a hash of its token ("" without tokens)."""
    return "" if token is None else hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    id: str
    owner: str
    model: Served
    options: dict
    stream: Any
    created: float = field(default_factory=time.time)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    saved: bytes | None = None  # the stream's state as last written or snapshot (None: stale)

    @property
    def steps(self) -> int:
        return int(self.stream.steps)

    def row(self) -> Row:
        self.saved = self.stream.to_bytes()
        return Row(
            self.id, self.owner, self.model.name, self.options, self.saved, self.steps, self.created
        )

    def snapshot(self) -> bytes:
        """The stream's state now, to put back if a step fails (free when persisting
        every step: the last row written holds it)."""
        if self.saved is None:
            self.saved = self.stream.to_bytes()
        return self.saved

    def rollback(self, state: bytes) -> None:
        """Back to ``state`` (a ``snapshot``): a fresh stream restored from it."""
        self.stream, self.saved = self.model.restore(self.options, state), state

    def info(self) -> dict:
        return {
            "id": self.id,
            "model": self.model.name,
            "task": self.model.task,
            "steps": self.steps,
            "input": self.model.takes,
        }


class Sessions:
    """The open sessions, in memory and (see ``persist``) in the store."""

    def __init__(self, store: Store, models: dict[str, Served], limits: Limits) -> None:
        self.store, self.models, self.limits = store, models, limits
        self.open: dict[str, Session] = {}

    def restore(self) -> int:
        """Reopen every stored session of a served model; returns how many."""
        for row in self.store.load():
            model = self.models.get(row.model)
            if model is None:
                log.warning(
                    "session %s: model %r is not served; kept in the store", row.id, row.model
                )
                continue
            try:  # options as a new session's are checked: the file may have been edited
                options = model.session_options(row.options)
                stream = model.restore(options, row.state)
            except (ValueError, KeyError, RuntimeError) as e:
                log.warning(
                    "session %s: its state or options do not fit model %r (%s); kept in the store",
                    row.id,
                    row.model,
                    e,
                )
                continue
            self.open[row.id] = Session(
                row.id, row.owner, model, options, stream, row.created, saved=row.state
            )
        return len(self.open)

    def create(self, owner: str, model: Served, options: dict) -> Session:
        options = model.session_options(options)
        if len(self.open) >= self.limits.sessions:
            raise RequestError(
                f"sessions: the server's limit of {self.limits.sessions} is reached", 429
            )
        mine = sum(1 for s in self.open.values() if s.owner == owner)
        if mine >= self.limits.per_client:
            raise RequestError(
                f"sessions: this client has {mine} open, its limit; delete some first", 429
            )
        session = Session(secrets.token_urlsafe(24), owner, model, options, model.open(options))
        self.store.save([session.row()])
        self.open[session.id] = session
        return session

    def get(self, session_id: str, owner: str) -> Session:
        session = self.open.get(session_id)
        if session is None or not secrets.compare_digest(session.owner, owner):
            raise RequestError(f"session {session_id!r} does not exist (or was deleted)", 404)
        return session

    def delete(self, session: Session) -> None:
        self.store.delete(session.id)
        self.open.pop(session.id, None)

    def save_all(self) -> None:
        self.store.save([s.row() for s in self.open.values()])


__all__ = ["Session", "Sessions", "owner_of"]
