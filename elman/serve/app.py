"""The HTTP API (FastAPI): per-task endpoints, streaming sessions, health and model info.

GET    /health                       liveness (no token needed)
GET    /models, /models/{name}       what each model is and which endpoints it answers
POST   /models/{name}/generate       text (or music); "stream": true sends server-sent events
POST   /models/{name}/classify|tag|transduce|forecast|transcribe
POST   /sessions                     open a streaming session -> its id
GET    /sessions/{id}                its model and step count
POST   /sessions/{id}/step           new observations -> next-token distribution, forecast...
DELETE /sessions/{id}

Every error is a 4xx (or 500) with a JSON ``detail``; the server keeps serving.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from contextlib import asynccontextmanager
from functools import partial
from itertools import chain

import torch
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from elman.serve import schemas as s
from elman.serve.batching import Batcher
from elman.serve.config import ServeConfig
from elman.serve.limits import BodyLimit
from elman.serve.served import RequestError, Served, check_finite
from elman.serve.sessions import Session, Sessions, owner_of
from elman.serve.store import Store

STEP_FIELDS = ("text", "values", "frames", "tokens", "audio")


class Server:
    """The models, sessions, store and batcher behind one app."""

    def __init__(self, models: list[Served], config: ServeConfig) -> None:
        self.config, self.limits = config, config.limits
        self.models = {m.name: m for m in models}
        self.store = Store(config.state)
        self.sessions = Sessions(self.store, self.models, self.limits)
        self.batcher = Batcher(config.max_batch)

    def model(self, name: str, endpoint: str | None = None) -> Served:
        model = self.models.get(name)
        if model is None:
            raise RequestError(f"model {name!r} is not served; serving {sorted(self.models)}", 404)
        if endpoint == "sessions":
            model.check_streams()  # a model that cannot stream says why (400)
        if endpoint is not None and endpoint not in model.endpoints:
            raise RequestError(
                f"model {name!r} is a {model.task} model: it answers "
                f"{', '.join(model.endpoints)}, not {endpoint}",
                400,
            )
        return model

    def run_steps(self, model: Served, jobs: list[tuple[Session, object]]) -> list[dict]:
        """One forward pass for a batch of session steps, then their states to the store.

        All or nothing: when the pass raises, a reply is not finite (not JSON) or the store
        refuses the new states, every session of the batch is put back as it was before
        (the store was not written either), so an error reply never changes a session and
        the batcher can retry the others alone."""
        sessions = [j[0] for j in jobs]
        before = [x.snapshot() for x in sessions]
        done = False
        try:
            replies = model.step(
                [x.stream for x in sessions], [j[1] for j in jobs], [x.options for x in sessions]
            )
            for x in sessions:
                x.saved = None  # the stream moved on: its snapshot is no longer its state
            for reply in replies:
                check_finite(str(model.takes), reply)
            if self.config.persist == "step":
                self.store.save([x.row() for x in sessions])
            done = True
        finally:
            if not done:
                for x, state in zip(sessions, before, strict=True):
                    x.rollback(state)
        return replies

    async def step(self, session: Session, body: s.StepRequest) -> dict:
        inputs = _step_input(body, session.model)
        async with session.lock:  # one step at a time per session, in arrival order
            if session.id not in self.sessions.open:
                raise RequestError(f"session {session.id!r} was deleted", 404)
            chunk = session.model.parse(session.stream, inputs, self.limits)
            run = partial(self.run_steps, session.model)
            reply = await self.batcher.submit(
                (session.model.name, chunk.key), run, (session, chunk.data)
            )
        return {"id": session.id, "steps": session.steps, **reply}

    async def handle(self, name: str, endpoint: str, body) -> dict:
        """A stateless request, batched with concurrent ones to the same model and endpoint."""
        model = self.model(name, endpoint)
        job = model.parse_request(endpoint, body, self.limits)
        reply = await self.batcher.submit((name, endpoint), partial(model.answer, endpoint), job)
        check_finite(endpoint, reply)
        return reply


def _step_input(body: s.StepRequest, model: Served):
    given = [f for f in STEP_FIELDS if getattr(body, f) is not None]
    if given != [model.takes]:
        raise RequestError(
            f"a {model.task} session reads `{model.takes}`; the step gave {given or 'nothing'}"
        )
    return getattr(body, model.takes)


def create_app(models: list[Served], config: ServeConfig) -> FastAPI:
    server = Server(models, config)
    if config.threads:
        torch.set_num_threads(config.threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        server.sessions.restore()
        yield
        if config.persist == "shutdown":
            server.sessions.save_all()
        server.batcher.close()
        server.store.close()

    app = FastAPI(
        title="Elman",
        summary="Recurrent sequence models: generation, labels, forecasts, streaming sessions",
        lifespan=lifespan,
        docs_url=None,  # its pages load scripts from a CDN; /openapi.json is the schema
        redoc_url=None,
        responses={400: {"model": s.ErrorBody}, 401: {"model": s.ErrorBody}},
    )
    app.state.server = server
    app.add_middleware(BodyLimit, limit=config.limits.body_bytes)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, e: RequestError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        """422 naming each field, what was expected and (briefly) what came: the input is
        not echoed whole, since it may be large or not valid JSON at all (NaN)."""
        errors = [
            {
                "loc": err["loc"],
                "msg": err["msg"],
                "type": err["type"],
                "got": _brief(err.get("input")),
            }
            for err in e.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    bearer = HTTPBearer(auto_error=False)
    hashes = [owner_of(t) for t in config.tokens]

    async def client(cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:  # noqa: B008
        """The caller's owner id; 401 when tokens are required and this one is not known.
        (async: FastAPI would run a plain function on a thread pool, a hop per request)"""
        if not config.tokens:
            return ""
        given = owner_of(cred.credentials) if cred is not None else ""
        if not any(hmac.compare_digest(given, h) for h in hashes):
            raise RequestError("a valid API token is required: Authorization: Bearer TOKEN", 401)
        return given

    routes(app, server, client)
    return app


def routes(app: FastAPI, server: Server, client) -> None:
    auth = [Depends(client)]

    @app.get("/health", response_model=s.Health)
    async def health() -> dict:
        return {"status": "ok", "models": len(server.models), "sessions": len(server.sessions.open)}

    @app.get("/models", response_model=list[s.ModelInfo], dependencies=auth)
    async def list_models() -> list[dict]:
        return [m.info() for m in server.models.values()]

    @app.get("/models/{name}", response_model=s.ModelInfo, dependencies=auth)
    async def model_info(name: str) -> dict:
        return server.model(name).info()

    @app.post("/models/{name}/generate", response_model=s.GenerateResponse, dependencies=auth)
    async def generate(name: str, body: s.GenerateRequest):
        model = server.model(name, "generate")
        if not body.stream:
            return await server.batcher.call(_generated, model, body, server.limits)
        if not model.streams_tokens:
            raise RequestError(f"stream: a {model.task} model's output does not stream; omit it")
        tokens = model.generate(body, server.limits)
        first = await server.batcher.call(next, tokens, None)  # errors before the 200
        return StreamingResponse(_events(first, tokens), media_type="text/event-stream")

    for endpoint, request, response in (
        ("classify", s.ClassifyRequest, s.ClassifyResponse),
        ("tag", s.TagRequest, s.TagResponse),
        ("transduce", s.TransduceRequest, s.TransduceResponse),
        ("forecast", s.ForecastRequest, s.ForecastResponse),
        ("transcribe", s.TranscribeRequest, s.TranscribeResponse),
    ):
        app.post(f"/models/{{name}}/{endpoint}", response_model=response, dependencies=auth)(
            _handler(server, endpoint, request)
        )
    session_routes(app, server, client)


def _handler(server: Server, endpoint: str, request: type):
    async def handle(name: str, body) -> dict:
        return await server.handle(name, endpoint, body)

    handle.__name__ = endpoint
    handle.__annotations__ = {"name": str, "body": request, "return": dict}  # for FastAPI
    return handle


def session_routes(app: FastAPI, server: Server, client) -> None:
    @app.post("/sessions", response_model=s.SessionInfo, status_code=201)
    async def open_session(body: s.SessionRequest, owner: str = Depends(client)) -> dict:
        model = server.model(body.model, "sessions")
        return server.sessions.create(owner, model, body.options).info()

    @app.get("/sessions/{session_id}", response_model=s.SessionInfo)
    async def session_info(session_id: str, owner: str = Depends(client)) -> dict:
        return server.sessions.get(session_id, owner).info()

    @app.post("/sessions/{session_id}/step", response_model=s.StepResponse)
    async def step(session_id: str, body: s.StepRequest, owner: str = Depends(client)):
        reply = await server.step(server.sessions.get(session_id, owner), body)
        return JSONResponse(reply)  # the hot path: built by us, not re-validated by FastAPI

    @app.delete("/sessions/{session_id}", status_code=204)
    async def delete(session_id: str, owner: str = Depends(client)) -> Response:
        session = server.sessions.get(session_id, owner)
        async with session.lock:
            server.sessions.delete(session)
        return Response(status_code=204)


def _brief(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _generated(model: Served, body: s.GenerateRequest, limits) -> dict:
    out = model.generate(body, limits)
    return {"text": "".join(out)} if isinstance(out, Iterator) else out


def _events(first: str | None, rest: Iterator[str]) -> Iterator[str]:
    """Server-sent events: one ``token`` event per token, then ``end`` with the whole text."""
    text = []
    for token in rest if first is None else chain([first], rest):
        text.append(token)
        yield f"event: token\ndata: {json.dumps({'token': token})}\n\n"
    yield f"event: end\ndata: {json.dumps({'text': ''.join(text)})}\n\n"


__all__ = ["Server", "create_app"]
