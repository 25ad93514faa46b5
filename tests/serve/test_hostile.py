"""Hostile requests: numbers out of any range get a 422 naming the field (never a 5xx), and a
failed session step leaves the session exactly as it was, in memory and in the store."""

from __future__ import annotations

import json
import math
import sqlite3

import httpx
import pytest

from elman.serve.config import Limits
from elman.serve.schemas import SEED_MAX
from tests.serve.conftest import serving

JSON = {"content-type": "application/json"}
HUGE = 1180591620717411303424  # 2**70


@pytest.fixture(scope="module")
def live(runs, tmp_path_factory):
    state = tmp_path_factory.mktemp("hostile") / "s.sqlite"
    with (
        serving(runs.values(), state, limits=Limits(steps=50, generate=20, batch=4)) as (url, app),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, app


def _raw(client, path: str, text: str) -> httpx.Response:
    """A body as written (httpx refuses to write NaN or Infinity itself)."""
    return client.post(path, content=text.encode(), headers=JSON)


def _field_error(r: httpx.Response, field: str) -> dict:
    """The 422's error about ``field``: the schema's (a list), or a model's (one line)."""
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    if isinstance(detail, str):
        assert detail.startswith(field), detail
        return {"msg": detail}
    errors = [e for e in detail if field in e["loc"]]
    assert errors, r.text
    return errors[0]


def test_a_seed_past_64_bits_is_a_422_naming_the_range(live):
    client, _ = live
    body = {"prompt": "KING", "length": 3}
    error = _field_error(client.post("/models/char/generate", json=body | {"seed": HUGE}), "seed")
    assert str(SEED_MAX) in error["msg"] and error["got"] == repr(HUGE)
    assert _field_error(client.post("/models/char/generate", json=body | {"seed": -1}), "seed")
    ok = client.post("/models/char/generate", json=body | {"seed": SEED_MAX})
    assert ok.status_code == 200 and len(ok.json()["text"]) == 3


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/models/char/generate", {"prompt": "K", "length": HUGE}, "length"),
        ("/models/char/generate", {"prompt": "K", "top_k": HUGE}, "top_k"),
        ("/models/char/generate", {"prompt": "K", "frames": [[HUGE]]}, "frames"),
        ("/models/char/generate", {"prompt": "K", "temperature": 10**400}, "temperature"),
        ("/models/g2p/transduce", {"inputs": ["cat"], "beam": HUGE}, "beam"),
        ("/models/g2p/transduce", {"inputs": ["cat"], "nbest": -HUGE}, "nbest"),
        ("/models/sales/forecast", {"values": [10**400] * 20}, "values"),
        ("/models/motion/classify", {"series": [[[10**400, 1]]]}, "series"),
        ("/sessions", {"model": "char", "options": {"top_k": 2**64}}, "options"),
        ("/sessions", {"model": "sales", "options": {"threshold": 10**400}}, "options"),
        # floats in range for JSON, not for float32 sampling or length normalisation
        ("/models/char/generate", {"prompt": "K", "temperature": 1e-320}, "temperature"),
        ("/models/word/generate", {"prompt": "the", "temperature": 3.5e38}, "temperature"),
        ("/models/char/generate", {"prompt": "K", "top_p": 1e-320}, "top_p"),
        ("/models/g2p/transduce", {"inputs": ["cat"], "alpha": 1e308}, "alpha"),
        # fields a model does not read
        ("/models/char/generate", {"prompt": "K", "frames": [[60]]}, "frames"),
        ("/models/word/generate", {"prompt": "the", "tokens": ["a"]}, "tokens"),
    ],
)
def test_out_of_range_numbers_and_unread_fields_are_a_422(live, path, body, field):
    client, _ = live
    _field_error(client.post(path, json=body), field)


def test_music_generation_refuses_what_it_does_not_read(live):
    client, _ = live
    if "chorales" not in {m["name"] for m in client.get("/models").json()}:
        pytest.skip("music21 and mido are not installed")
    for extra in ({"top_k": 3}, {"top_p": 0.5}, {"prompt": "KING"}, {"tokens": ["C4"]}):
        r = client.post("/models/chorales/generate", json={"length": 2} | extra)
        assert r.status_code == 422 and r.json()["detail"].startswith(next(iter(extra))), r.text
    assert client.post("/models/chorales/generate", json={"length": 2}).status_code == 200


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_session_options_are_a_422(live, value):
    client, _ = live
    for model, options in (
        ("sales", f'{{"threshold": {value}}}'),
        ("char", f'{{"top_k": {value}}}'),
        ("g2p", f'{{"source": "cat", "top_k": {value}}}'),
    ):
        r = _raw(client, "/sessions", f'{{"model": "{model}", "options": {options}}}')
        error = _field_error(r, "options")
        assert "a finite number" in error["msg"] and error["got"] in ("nan", "inf", "-inf")
    assert client.get("/health").json()["sessions"] == 0


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"threshold": 3.0, "window": 5}, "unknown ['window']"),
        ({"threshold": True}, "options.threshold"),
        ({"threshold": "3"}, "options.threshold"),
        ({"series": 5}, "options.series"),
        ({"threshold": 1e308, "series": "nope"}, None),  # one series: any name is that one
    ],
)
def test_forecast_session_options_are_checked(live, options, reason):
    client, _ = live
    r = client.post("/sessions", json={"model": "sales", "options": options})
    if reason is None:
        assert r.status_code == 201, r.text
        client.delete(f"/sessions/{r.json()['id']}")
    else:
        assert r.status_code == 422 and reason in r.json()["detail"], r.text


def test_options_of_other_kinds_are_checked(live):
    client, _ = live
    cases = [
        ({"model": "char", "options": {"top_k": "5"}}, "options.top_k"),
        ({"model": "char", "options": {"top_k": 5, "source": "x"}}, "unknown"),
        ({"model": "classes", "options": {"top_k": 5}}, "takes none"),
        ({"model": "g2p", "options": {"source": 5}}, "options.source"),
        ({"model": "g2p", "options": {"source": "cat", "beam": 2}}, "unknown"),
    ]
    for body, reason in cases:
        r = client.post("/sessions", json=body)
        assert r.status_code == 422 and reason in r.json()["detail"], (body, r.text)
    nested = client.post("/sessions", json={"model": "char", "options": {"top_k": [5]}})
    _field_error(nested, "options")


def test_forecast_values_past_the_scaler_are_a_422(live):
    client, app = live
    for values in ([1e308] * 20, [0.5] * 19 + [-1e308]):
        r = client.post("/models/sales/forecast", json={"values": values})
        assert r.status_code == 422 and "e+308" in r.json()["detail"], r.text
        assert "is out of range" in r.json()["detail"]
    model = app.state.server.models["sales"]
    real = model.answer
    model.answer = lambda endpoint, jobs: [  # a model that answers NaN: refused, never sent
        {"point": [math.nan] * 4, "quantiles": {}} for _ in jobs
    ]
    try:
        r = client.post("/models/sales/forecast", json={"values": [0.5] * 20})
    finally:
        model.answer = real
    assert r.status_code == 422 and "not finite" in r.json()["detail"]
    assert client.post("/models/sales/forecast", json={"values": [0.5] * 20}).status_code == 200


def test_series_classification_refuses_values_past_float32(live):
    client, _ = live
    r = client.post("/models/motion/classify", json={"series": [[[1.0, 2.0], [1e308, 0.0]]]})
    assert r.status_code == 422 and "1e+308" in r.json()["detail"], r.text
    sid = client.post("/sessions", json={"model": "motion"}).json()["id"]
    client.post(f"/sessions/{sid}/step", json={"frames": [[1.0, 2.0]]})
    r = client.post(f"/sessions/{sid}/step", json={"frames": [[0.0, -1e308]]})
    assert r.status_code == 422 and "1e+308" in r.json()["detail"], r.text
    assert client.get(f"/sessions/{sid}").json()["steps"] == 1
    client.delete(f"/sessions/{sid}")


def _step(client, sid: str, values: list[float]) -> httpx.Response:
    return client.post(f"/sessions/{sid}/step", json={"values": values})


def _stored_steps(state, sid: str) -> int:
    with sqlite3.connect(state) as db:
        return db.execute("SELECT steps FROM sessions WHERE id = ?", (sid,)).fetchone()[0]


def test_a_failed_forecast_step_leaves_the_session_as_it_was(runs, tmp_path):
    state = tmp_path / "s.sqlite"
    good, later, last = [0.1, 0.3, 0.2], [0.4, 0.1], [0.25]
    options = {"model": "sales", "options": {"threshold": 3.0}}
    with serving([runs["sales"]], state) as (url, app), httpx.Client(base_url=url) as client:
        sid, ref = (client.post("/sessions", json=options).json()["id"] for _ in range(2))
        assert _step(client, sid, good).status_code == 200
        _step(client, ref, good)
        r = _step(client, sid, [1e308, -1e308])
        assert r.status_code == 422 and "values[0]: 1e+308" in r.json()["detail"], r.text
        assert client.get(f"/sessions/{sid}").json()["steps"] == 3
        assert _stored_steps(state, sid) == 3
        assert (
            _step(client, sid, later).json()["outputs"]
            == _step(client, ref, later).json()["outputs"]
        )
        # a reply that is not finite, made after the model stepped: rolled back too
        model = app.state.server.models["sales"]
        real = model.step

        def poisoned(streams, chunks, options):
            replies = real(streams, chunks, options)
            replies[0]["outputs"][0]["score"] = math.inf
            return replies

        model.step = poisoned
        try:
            r = _step(client, sid, last)
        finally:
            model.step = real
        assert r.status_code == 422 and "not finite" in r.json()["detail"], r.text
        assert client.get(f"/sessions/{sid}").json()["steps"] == 5
        assert _stored_steps(state, sid) == 5
        assert _step(client, sid, [1e308]).status_code == 422  # the last thing before the stop
    with serving([runs["sales"]], state) as (url, _), httpx.Client(base_url=url) as client:
        assert client.get(f"/sessions/{sid}").json()["steps"] == 5
        got, want = _step(client, sid, last).json(), _step(client, ref, last).json()
        assert got["outputs"] == want["outputs"] and got["steps"] == 6


@pytest.mark.parametrize("persist", ["step", "shutdown"])
def test_a_failed_step_in_a_batch_leaves_its_neighbours_right(runs, tmp_path, persist):
    """On the server's batch function itself: one reply that is not finite rolls back the
    whole batch (so the batcher can rerun the good steps alone), and the store is untouched."""
    with serving([runs["sales"]], tmp_path / "s.sqlite", persist=persist) as (_, app):
        server = app.state.server
        model = server.models["sales"]
        sessions = [server.sessions.create("", model, {}) for _ in range(4)]
        real = model.step
        model.step = lambda *a: [*real(*a)[:1], {"outputs": [{"score": math.nan}]}]
        try:
            with pytest.raises(ValueError, match="not finite"):
                server.run_steps(model, [(s, [0.1, 0.2]) for s in sessions[:2]])
        finally:
            model.step = real
        assert [s.steps for s in sessions] == [0, 0, 0, 0]
        assert [r.steps for r in server.store.load()] == [0, 0, 0, 0]
        first = server.run_steps(model, [(s, [0.1, 0.2]) for s in sessions[:2]])
        fresh = server.run_steps(model, [(s, [0.1, 0.2]) for s in sessions[2:]])
        assert first == fresh and [s.steps for s in sessions] == [2, 2, 2, 2]


def test_a_stored_row_with_bad_options_is_skipped_and_kept(runs, tmp_path):
    state = tmp_path / "s.sqlite"
    with serving([runs["char"]], state) as (url, _):
        sid = httpx.post(f"{url}/sessions", json={"model": "char"}).json()["id"]
        httpx.post(f"{url}/sessions/{sid}/step", json={"text": "KING"})
    with sqlite3.connect(state) as db:
        state_blob = db.execute("SELECT state FROM sessions").fetchone()[0]
        bad = [
            ("x" * 32, "{not json"),
            ("y" * 32, json.dumps([1, 2])),
            ("z" * 32, json.dumps({"top_k": "many"})),
        ]
        for i, options in bad:
            db.execute(
                "INSERT INTO sessions VALUES (?, '', 'char', ?, ?, 4, 0, 0)",
                (i, options, state_blob),
            )
    with serving([runs["char"]], state) as (url, _):
        assert httpx.get(f"{url}/health").json()["sessions"] == 1
        assert httpx.get(f"{url}/sessions/{sid}").json()["steps"] == 4
        assert httpx.get(f"{url}/sessions/{'x' * 32}").status_code == 404
    with sqlite3.connect(state) as db:
        kept = {r[0] for r in db.execute("SELECT id FROM sessions")}
    assert kept == {sid} | {i for i, _ in bad}
