"""Fuzzing the request models: arbitrary JSON, and bodies shaped like each request model
with wrong or extreme values (integers past 64 bits, NaN and infinities anywhere, 1e308 in
every numeric input, empty and oversized inputs, steps of the wrong kind), never get a 5xx,
always a JSON reply, and never disturb an open session."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elman.serve import schemas
from elman.serve.config import Limits
from tests.serve.conftest import serving

ENDPOINTS = {
    "/models/char/generate": schemas.GenerateRequest,
    "/models/classes/classify": schemas.ClassifyRequest,
    "/models/tagger/tag": schemas.TagRequest,
    "/models/g2p/transduce": schemas.TransduceRequest,
    "/models/sales/forecast": schemas.ForecastRequest,
    "/sessions": schemas.SessionRequest,
    "STEP": schemas.StepRequest,
}
HOSTILE_NUMBERS = [2**64, 2**70, -(2**63) - 1, 10**400, 1e308, -1e308, 3.5e38, 1e-320]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.integers()
    | st.floats()  # NaN and infinities included: sent as JSON's NaN, Infinity, -Infinity
    | st.sampled_from([*HOSTILE_NUMBERS, float("nan"), float("inf"), float("-inf")])
)
scalars |= st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def shaped(model) -> st.SearchStrategy[dict]:
    """Dicts with the request model's own field names (and sometimes a stranger)."""
    names = [*model.model_fields, "extra"]
    return st.dictionaries(st.sampled_from(names), json_values, max_size=len(names))


@pytest.fixture(scope="module")
def live(runs, tmp_path_factory):
    state = tmp_path_factory.mktemp("fuzz") / "s.sqlite"
    limits = Limits(steps=40, generate=20, batch=4)
    with (
        serving(runs.values(), state, limits=limits) as (url, _),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        sid = client.post("/sessions", json={"model": "char"}).json()["id"]
        client.post(f"/sessions/{sid}/step", json={"text": "KING"})
        yield client, sid


def _post(client, path: str, body) -> httpx.Response:
    """``body`` as JSON with NaN and Infinity written as such (httpx refuses them)."""
    content = json.dumps(body).encode()
    return client.post(path, content=content, headers={"content-type": "application/json"})


def _check(client, sid, path, body) -> None:
    path = f"/sessions/{sid}/step" if path == "STEP" else path
    r = _post(client, path, body)
    assert r.status_code < 500, (path, body, r.text)
    assert r.headers["content-type"].startswith(("application/json", "text/event-stream"))
    if path == "/sessions" and r.status_code == 201:
        client.delete(f"/sessions/{r.json()['id']}")


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(sorted(ENDPOINTS)), body=json_values)
def test_any_json_gets_a_4xx_or_an_answer(live, path, body):
    client, sid = live
    _check(client, sid, path, body)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_bodies_shaped_like_the_request_models(live, data):
    client, sid = live
    path = data.draw(st.sampled_from(sorted(ENDPOINTS)))
    body = data.draw(shaped(ENDPOINTS[path]))
    if path == "STEP" and body.get("text") not in (None, ""):
        body["text"] = None  # a valid step would advance the watched session
    _check(client, sid, path, body)


def test_the_watched_session_was_never_advanced(live):
    client, sid = live
    assert client.get(f"/sessions/{sid}").json()["steps"] == 4
    assert client.get("/health").json()["status"] == "ok"


# ---- a fixed table: every field of every request, each hostile value -----------------------
NAN, INF = float("nan"), float("inf")
EMPTY_AND_OVERSIZED = ["", "x" * 2000, [], [[]], {}, [1.0] * 41, ["great"] * 5, [["a"]] * 5]
HOSTILE = [*HOSTILE_NUMBERS, NAN, INF, -INF, True, None, *EMPTY_AND_OVERSIZED]
SAMPLING = {"temperature": 0.8, "top_k": 5, "top_p": 0.9, "seed": 1, "stream": False}
BASES = {  # a valid body per endpoint (and per session kind), one field at a time made hostile
    "/models/char/generate": {"prompt": "KING", "length": 3} | SAMPLING,
    "/models/word/generate": {"prompt": "the", "length": 3} | SAMPLING,
    "/models/chorales/generate": {"length": 2, "frames": [[60, 64]], "seed": 1, "temperature": 1},
    "/models/classes/classify": {"texts": ["great film"]},
    "/models/motion/classify": {"series": [[[1.0, 2.0], [0.5, 1.0]]]},
    "/models/tagger/tag": {"sentences": [["the", "dog", "ran"]]},
    "/models/g2p/transduce": {"inputs": ["cat"], "beam": 2, "nbest": 1, "alpha": 0.5},
    "/models/sales/forecast": {"values": [0.5] * 20, "series": "", "start": None, "freq": None},
    "/sessions": {"model": "sales", "options": {"threshold": 3.0}},
    "STEP sales": {"values": [0.5, 0.25]},
    "STEP char": {"text": "KI"},
    "STEP classes": {"text": "great"},
    "STEP motion": {"frames": [[1.0, 2.0]]},
    "STEP g2p": {"tokens": ["K"]},
    "STEP chorales": {"frames": [[60, 64]]},
}
SESSIONS = {"g2p": {"source": "cat"}}


def _variants(body: dict) -> list[dict]:
    """``body`` with each field, each element of a list field and each option replaced by
    each hostile value."""
    out = []
    for key, value in body.items():
        for bad in HOSTILE:
            out.append(body | {key: bad})
            if isinstance(value, list) and value:
                inner = value[0]
                out.append(body | {key: [*value[1:], bad]})
                if isinstance(inner, list) and inner:
                    out.append(body | {key: [[*inner[1:], bad]]})
                    if isinstance(inner[0], list):
                        out.append(body | {key: [[[*inner[0][1:], bad]]]})
            if isinstance(value, dict):
                out.append(body | {key: value | {"threshold": bad, "top_k": bad}})
                out.append(body | {key: {"top_k": bad}})
    return out


def test_every_field_with_every_hostile_value_gets_a_4xx_or_an_answer(live):
    client, _ = live
    served = {m["name"] for m in client.get("/models").json()}
    sessions = {}
    for name in ("sales", "char", "classes", "motion", "g2p", "chorales"):
        if name in served:
            body = {"model": name, "options": SESSIONS.get(name, {})}
            sessions[name] = _post(client, "/sessions", body).json()["id"]
    failures = []
    for where, base in BASES.items():
        kind = where.split()[-1] if where.startswith("STEP") else None
        model = where.split("/")[2] if where.startswith("/models/") else None
        if (kind and kind not in sessions) or (model and model not in served):
            continue
        path = f"/sessions/{sessions[kind]}/step" if kind else where
        for body in _variants(base):
            r = _post(client, path, body)
            typed = r.headers["content-type"].startswith(("application/json", "text/event"))
            if r.status_code >= 500 or not typed:
                failures.append((where, json.dumps(body)[:120], r.status_code, r.text[:200]))
            elif where == "/sessions" and r.status_code == 201:
                client.delete(f"/sessions/{r.json()['id']}")
    assert not failures, failures
    assert client.get("/health").json()["status"] == "ok"


def test_steps_of_the_wrong_kind_get_a_422(live):
    client, _ = live
    served = {m["name"] for m in client.get("/models").json()}
    kinds = [k for k in ("sales", "char", "motion", "g2p") if k in served]
    ids = {
        k: _post(client, "/sessions", {"model": k, "options": SESSIONS.get(k, {})}) for k in kinds
    }
    for kind, r in ids.items():
        sid = r.json()["id"]
        for other in kinds:
            if other != kind:
                reply = _post(client, f"/sessions/{sid}/step", BASES[f"STEP {other}"])
                assert reply.status_code == 422 and "session reads" in reply.json()["detail"]
        assert client.get(f"/sessions/{sid}").json()["steps"] == 0
        assert _post(client, f"/sessions/{sid}/step", {}).status_code == 422
