"""``elman serve DIR [DIR...]``: the models behind an HTTP API (``pip install elman[serve]``).

Loopback only unless tokens are given; sessions are kept in SQLite (``--state``) and
resume after a restart. See ``elman.serve.app`` for the endpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from elman.serve.config import PERSIST, TOKEN_ENV, Limits, ServeConfig, tokens_from
from elman.tasks.options import integer

# flag, Limits field, help: over a limit a request gets a 4xx JSON reason
FLAGS = (
    ("--max-body-bytes", "body_bytes", "bytes in a request body (413)"),
    ("--max-steps", "steps", "steps (tokens, values, frames) in one request (422)"),
    ("--max-generate", "generate", "tokens or steps one generation may ask for (422)"),
    ("--max-inputs", "batch", "texts, series or sentences in one request (422)"),
    ("--max-sessions", "sessions", "open sessions on the server (429)"),
    ("--max-sessions-per-client", "per_client", "open sessions per token (429)"),
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve trained models over HTTP, with streaming sessions")
    p.add_argument("dirs", nargs="+", help="model directories (each served under its name)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=integer, default=8000, help="port to listen on (default: 8000)")
    p.add_argument(
        "--token",
        action="append",
        default=None,
        help=f"an API token (repeat: one per client); or set {TOKEN_ENV}=T1,T2. Required for "
        "a non-loopback --host; each token sees only the sessions it opened",
    )
    p.add_argument(
        "--state", default=None, help="SQLite file of sessions (default: FIRST_DIR/sessions.sqlite)"
    )
    p.add_argument(
        "--persist",
        choices=PERSIST,
        default="step",
        help="save a session's state after every step (nothing lost on a crash) or only at "
        "a clean shutdown (faster steps)",
    )
    p.add_argument("--max-batch", type=integer, default=64, help="micro-batch size (1: off)")
    p.add_argument("--threads", type=integer, default=None, help="torch threads (default: torch's)")
    limits = Limits()
    for flag, name, what in FLAGS:
        help = f"limit: {what}; default {getattr(limits, name)} (limits.{name})"
        p.add_argument(flag, type=integer, default=getattr(limits, name), help=help)
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="uvicorn's log level (info: one line per request)",
    )


def config_from(a: argparse.Namespace) -> ServeConfig:
    limits = Limits(**{name: getattr(a, flag[2:].replace("-", "_")) for flag, name, _ in FLAGS})
    state = Path(a.state) if a.state else Path(a.dirs[0]) / "sessions.sqlite"
    return ServeConfig(
        a.host, a.port, tokens_from(a.token), state, a.persist, a.max_batch, a.threads, limits
    )


def serve(a: argparse.Namespace) -> None:
    try:
        import uvicorn

        from elman.serve.app import create_app
        from elman.serve.registry import load_models
    except ImportError as e:
        raise ImportError(
            f"serving needs fastapi and uvicorn: pip install elman[serve] ({e})"
        ) from e
    config = config_from(a)
    app = create_app(load_models(a.dirs), config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=a.log_level)
