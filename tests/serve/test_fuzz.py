"""Fuzzing the request models: arbitrary JSON, and bodies shaped like each request model
with wrong or extreme values, never get a 5xx, always a JSON reply, and never disturb an
open session."""

from __future__ import annotations

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
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
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


def _check(client, sid, path, body) -> None:
    path = f"/sessions/{sid}/step" if path == "STEP" else path
    r = client.post(path, json=body)
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
