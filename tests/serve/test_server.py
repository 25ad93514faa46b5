"""The HTTP API through a real client against uvicorn on a loopback port: every endpoint,
server-sent events, sessions (streaming equals the Python stream; restored after a
restart), auth, limits and bad input."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import httpx
import numpy as np
import pytest
import torch

from elman.data.tokenize import EOS_ID, PAD_ID, UNK_ID
from elman.serve.config import Limits, ServeConfig
from elman.serve.store import Row, Store
from elman.tasks.forecast import anomaly
from elman.tasks.forecast import trained as forecast_runs
from elman.tasks.forecast.anomaly import Detector
from elman.tasks.registry import load_run
from tests.serve.conftest import serving

pytestmark = pytest.mark.slow  # a real uvicorn server, serving eight freshly trained runs

JSON = {"content-type": "application/json"}
TOKENS = ("client-one-token-abcdef", "client-two-token-ghijkl")


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    state = tmp_path_factory.mktemp("state") / "sessions.sqlite"
    limits = Limits(steps=50, generate=40, batch=3)
    with (
        serving(runs.values(), state, limits=limits) as (url, app),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, app


def test_health_models_and_openapi(server):
    client, _ = server
    assert client.get("/health").json()["status"] == "ok"
    models = {m["name"]: m for m in client.get("/models").json()}
    assert models["char"]["task"] == "charlm" and models["char"]["session_input"] == "text"
    assert models["classes"]["classes"] == ["neg", "pos"]
    assert client.get("/models/sales").json()["horizon"] == 4
    assert client.get("/models/nope").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/sessions/{session_id}/step", "/models/{name}/transduce"} <= set(paths)


def test_generate_plain_and_as_server_sent_events(server, runs):
    client, _ = server
    body = {"prompt": "KING", "length": 12, "seed": 3, "temperature": 0.8}
    text = client.post("/models/char/generate", json=body).json()["text"]
    from elman.decode import Sampling

    expected = "".join(load_run(runs["char"]).generate("KING", 12, Sampling(0.8, seed=3)))
    assert text == expected
    with client.stream("POST", "/models/char/generate", json=body | {"stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [e for e in r.read().decode().split("\n\n") if e]
    tokens = [json.loads(e.split("data: ")[1])["token"] for e in events if "event: token" in e]
    assert "".join(tokens) == text and len(tokens) == 12
    assert json.loads(events[-1].split("data: ")[1]) == {"text": text}
    word = client.post("/models/word/generate", json={"prompt": "the", "length": 3, "seed": 1})
    assert word.status_code == 200 and isinstance(word.json()["text"], str)


def test_classify_tag_transduce_forecast_match_python(server, runs):
    client, _ = server
    got = client.post("/models/classes/classify", json={"texts": ["great film", "awful"]}).json()
    want = load_run(runs["classes"]).predict(["great film", "awful"])
    for g, w in zip(got["predictions"], want, strict=True):
        assert g["label"] == w["label"]
        assert g["probabilities"] == pytest.approx(w["probabilities"], abs=1e-6)
    tags = client.post("/models/tagger/tag", json={"texts": ["the dog ran"]}).json()["tags"]
    assert tags == load_run(runs["tagger"]).tag([["the", "dog", "ran"]])
    out = client.post("/models/g2p/transduce", json={"inputs": ["cat"], "beam": 2, "nbest": 2})
    hyps = out.json()["outputs"][0]
    assert len(hyps) == 2 and hyps[0]["logprob"] >= hyps[1]["logprob"]
    g2p = load_run(runs["g2p"])
    best = g2p.transduce(["cat"], 2, 2)[0][0]
    assert hyps[0]["output"] == g2p.vocab.target.decode(best.tokens)
    values = [float(v) for v in range(20)]
    fc = client.post("/models/sales/forecast", json={"values": values}).json()
    assert len(fc["point"]) == 4 and set(fc["quantiles"]) == {"0.1", "0.5", "0.9"}
    import numpy as np

    from elman.data.series import Series

    trained = load_run(runs["sales"])
    empty = np.zeros((20, 0))
    s = Series("", np.arange(20), np.array(values), empty, empty)
    assert fc["point"] == pytest.approx(forecast_runs.forecast(trained, s)[0].tolist(), rel=1e-5)


def test_session_steps_equal_the_python_stream(server, runs):
    client, _ = server
    sid = client.post("/sessions", json={"model": "char", "options": {"top_k": 60}}).json()["id"]
    char = load_run(runs["char"])
    vocab, stream = char.vocab, char.open_stream()
    for piece in ("KIN", "G", " RICHARD"):
        reply = client.post(f"/sessions/{sid}/step", json={"text": piece}).json()
        logp = stream.feed(vocab.encode(piece))[-1]
        got = {d["token"]: d["p"] for d in reply["next"]}
        want = dict(zip(vocab.chars, logp.exp().tolist(), strict=True))
        assert got == pytest.approx(want, abs=1e-6)
    assert reply["steps"] == len("KING RICHARD")
    assert client.get(f"/sessions/{sid}").json()["steps"] == len("KING RICHARD")
    assert client.delete(f"/sessions/{sid}").status_code == 204
    assert client.post(f"/sessions/{sid}/step", json={"text": "a"}).status_code == 404


def test_concurrent_steps_are_micro_batched_and_equal_lone_streams(server, runs, monkeypatch):
    client, app = server
    url = str(client.base_url)
    char = load_run(runs["char"])
    texts = ["romeo", "sweet", "heart", "night"]
    batcher, served = app.state.server.batcher, app.state.server.models["char"]
    gate = threading.Event()
    parsed = []

    def parse(*args, **kwargs):  # on the server's loop, right before the step is queued
        chunk = type(served).parse(served, *args, **kwargs)
        parsed.append(chunk)
        if len(parsed) % len(texts) == 0:  # the round's last step: open once it is queued
            asyncio.get_running_loop().call_soon(gate.set)
        return chunk

    monkeypatch.setattr(served, "parse", parse)

    async def go():
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            ids = [(await c.post("/sessions", json={"model": "char"})).json()["id"] for _ in texts]
            batches = len(batcher.sizes)
            for k in range(4):  # each round: every session steps one character at once
                gate.clear()
                batcher.pool.submit(gate.wait, 30)  # the worker waits until all are queued
                rs = await asyncio.gather(
                    *(
                        c.post(f"/sessions/{i}/step", json={"text": t[k]})
                        for i, t in zip(ids, texts, strict=True)
                    )
                )
                assert all(r.status_code == 200 for r in rs)
            return ids, [r.json() for r in rs], batcher.sizes[batches:]

    ids, replies, sizes = asyncio.run(go())
    assert gate.is_set() and len(parsed) == 4 * len(texts)
    # each round: at most the one step that found the worker idle ran alone, the rest together
    assert sum(sizes) == 4 * len(texts) and len(sizes) <= 2 * 4 and max(sizes) >= 2
    for reply, text in zip(replies, texts, strict=True):
        logp = char.open_stream().feed(char.vocab.encode(text[:4]))[-1]
        top = logp.exp().topk(5)
        assert [d["token"] for d in reply["next"]] == [char.vocab.chars[i] for i in top.indices]
        assert [d["p"] for d in reply["next"]] == pytest.approx(top.values.tolist(), abs=1e-6)
    for i in ids:
        client.delete(f"/sessions/{i}")


def test_bad_input_gets_a_json_4xx_and_the_server_keeps_serving(server):
    client, _ = server
    sid = client.post("/sessions", json={"model": "char"}).json()["id"]
    client.post(f"/sessions/{sid}/step", json={"text": "KI"})
    cases = [
        (
            "/models/char/generate",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
        ),
        ("/models/char/generate", {"json": {"prompt": "K", "length": "5"}}, 422),
        ("/models/char/generate", {"json": {"prompt": "K", "length": 41}}, 422),
        ("/models/char/generate", {"json": {"prompt": "K", "lenght": 4}}, 422),
        ("/models/char/generate", {"json": {"prompt": "\u2603"}}, 422),
        ("/models/char/classify", {"json": {"texts": ["a"]}}, 400),
        ("/models/classes/classify", {"json": {"texts": ["a"] * 4}}, 422),
        ("/models/classes/classify", {"json": {"texts": []}}, 422),
        ("/models/classes/classify", {"json": {"series": [[1.0]]}}, 422),
        ("/models/tagger/tag", {"json": {"sentences": [["w"] * 51]}}, 422),
        ("/models/g2p/transduce", {"json": {"inputs": [""]}}, 422),
        ("/models/sales/forecast", {"json": {"values": [1.0, 2.0]}}, 422),
        ("/models/sales/forecast", {"json": {"values": [1.0, None]}}, 422),
        (f"/sessions/{sid}/step", {"json": {"text": ""}}, 422),
        (f"/sessions/{sid}/step", {"json": {"text": "x" * 51}}, 422),
        (f"/sessions/{sid}/step", {"json": {"values": [1.0]}}, 422),
        (f"/sessions/{sid}/step", {"json": {"text": 5}}, 422),
        ("/models/sales/forecast", {"content": b'{"values": [NaN, 1]}', "headers": JSON}, 422),
        ("/models/sales/forecast", {"content": b'{"values": [Infinity]}', "headers": JSON}, 422),
        ("/sessions/unknown-id/step", {"json": {"text": "a"}}, 404),
        ("/sessions", {"json": {"model": "char", "options": {"top_k": 0}}}, 422),
        ("/sessions", {"json": {"model": "g2p"}}, 422),
        ("/sessions", {"json": {"model": "tagger"}}, 400),
        ("/sessions", {"json": {"model": "missing"}}, 404),
    ]
    for path, kwargs, status in cases:
        r = client.post(path, **kwargs)
        assert r.status_code == status, (path, kwargs, r.text)
        assert "detail" in r.json()
    assert client.get(f"/sessions/{sid}").json()["steps"] == 2  # untouched by the bad steps
    assert client.post(f"/sessions/{sid}/step", json={"text": "N"}).json()["steps"] == 3


def test_body_size_limit(runs, tmp_path):
    with serving([runs["char"]], tmp_path / "s.sqlite", limits=Limits(body_bytes=200)) as (url, _):
        r = httpx.post(f"{url}/models/char/generate", json={"prompt": "K" * 300})
        assert r.status_code == 413 and "limit of 200 bytes" in r.json()["detail"]
        assert httpx.get(f"{url}/health").status_code == 200


def test_tokens_and_per_client_sessions(runs, tmp_path):
    with serving([runs["char"]], tmp_path / "s.sqlite", tokens=TOKENS) as (url, _):
        one, two = ({"authorization": f"Bearer {t}"} for t in TOKENS)
        assert httpx.get(f"{url}/health").status_code == 200  # liveness needs no token
        assert httpx.get(f"{url}/models").status_code == 401
        assert (
            httpx.get(f"{url}/models", headers={"authorization": "Bearer wrong"}).status_code == 401
        )
        assert httpx.get(f"{url}/models", headers=one).status_code == 200
        sid = httpx.post(f"{url}/sessions", json={"model": "char"}, headers=one).json()["id"]
        assert len(sid) >= 32
        assert (
            httpx.post(f"{url}/sessions/{sid}/step", json={"text": "K"}, headers=two).status_code
            == 404
        )
        assert httpx.delete(f"{url}/sessions/{sid}", headers=two).status_code == 404
        assert (
            httpx.post(f"{url}/sessions/{sid}/step", json={"text": "K"}, headers=one).status_code
            == 200
        )


def test_session_limits(runs, tmp_path):
    limits = Limits(sessions=3, per_client=2)
    with serving([runs["char"]], tmp_path / "s.sqlite", tokens=TOKENS, limits=limits) as (url, _):
        one, two = ({"authorization": f"Bearer {t}"} for t in TOKENS)
        for _ in range(2):
            assert (
                httpx.post(f"{url}/sessions", json={"model": "char"}, headers=one).status_code
                == 201
            )
        r = httpx.post(f"{url}/sessions", json={"model": "char"}, headers=one)
        assert r.status_code == 429 and "limit" in r.json()["detail"]
        assert httpx.post(f"{url}/sessions", json={"model": "char"}, headers=two).status_code == 201
        assert httpx.post(f"{url}/sessions", json={"model": "char"}, headers=two).status_code == 429


def test_non_loopback_bind_needs_a_token():
    with pytest.raises(ValueError, match="API token is required"):
        ServeConfig(host="0.0.0.0")
    with pytest.raises(ValueError, match="at least 16"):
        ServeConfig(tokens=("short",))
    assert ServeConfig(host="0.0.0.0", tokens=TOKENS).host == "0.0.0.0"


@pytest.mark.parametrize("persist", ["step", "shutdown"])
def test_sessions_survive_a_restart(runs, tmp_path, persist):
    state = tmp_path / "s.sqlite"
    char = load_run(runs["char"])
    with serving([runs["char"]], state, persist=persist) as (url, _):
        sid = httpx.post(f"{url}/sessions", json={"model": "char"}).json()["id"]
        httpx.post(f"{url}/sessions/{sid}/step", json={"text": "KING "})
    with serving([runs["char"]], state, persist=persist) as (url, _):
        assert httpx.get(f"{url}/sessions/{sid}").json()["steps"] == 5
        reply = httpx.post(f"{url}/sessions/{sid}/step", json={"text": "LEAR"}).json()
    logp = char.open_stream().feed(char.vocab.encode("KING LEAR"))[-1]
    top = logp.exp().topk(5)
    assert [d["p"] for d in reply["next"]] == pytest.approx(top.values.tolist(), abs=1e-6)
    assert torch.isfinite(logp).all()


def _open(client, model: str, **options) -> str:
    r = client.post("/sessions", json={"model": model, "options": options})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_forecast_session_gives_next_step_forecasts_and_scores(server, runs):
    client, _ = server
    sid = _open(client, "sales", threshold=3.0)
    values = [0.1 * k for k in range(8)]
    first = client.post(f"/sessions/{sid}/step", json={"values": values[:5]}).json()
    second = client.post(f"/sessions/{sid}/step", json={"values": values[5:]}).json()
    rows = first["outputs"] + second["outputs"]
    want = load_run(runs["sales"]).open_stream(None, Detector(threshold=3.0))
    out = want.feed(values)
    assert len(rows) == 8
    for t, row in enumerate(rows):
        assert row["next"]["point"] == pytest.approx(float(out.point[t]), rel=1e-5, abs=1e-6)
        assert row["score"] == pytest.approx(float(out.score[t]), rel=1e-5, abs=1e-6)
        assert row["next"]["quantiles"]["0.9"] >= row["next"]["quantiles"]["0.1"]
    assert second["steps"] == 8


def test_forecast_session_threshold_fitted_on_the_training_data(server, runs):
    client, _ = server
    r = client.post("/sessions", json={"model": "sales", "options": {"threshold": "fit"}})
    assert r.status_code == 201
    trained = load_run(runs["sales"])
    series = forecast_runs.load_source(trained.info["source"])
    training = [x.head(len(x) - trained.info["valid_steps"]) for x in series]
    want = anomaly.fit_threshold(trained, training, 0.99)
    sid = r.json()["id"]
    calm = [float(v) for v in np.sin(np.arange(30) / 3)]
    client.post(f"/sessions/{sid}/step", json={"values": calm})
    spike = client.post(f"/sessions/{sid}/step", json={"values": [9.0]}).json()["outputs"][0]
    assert spike["flagged"] and spike["score"] > want
    bad = client.post("/sessions", json={"model": "sales", "options": {"threshold": "high"}})
    assert bad.status_code == 422 and "'fit'" in bad.json()["detail"]


def test_classify_session_tracks_the_prefix(server, runs):
    client, _ = server
    sid = _open(client, "classes")
    client.post(f"/sessions/{sid}/step", json={"text": "great"})
    reply = client.post(f"/sessions/{sid}/step", json={"text": "film"}).json()
    want = load_run(runs["classes"]).predict(["great film"])[0]
    assert reply["label"] == want["label"]
    assert reply["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_series_classify_session_checks_the_feature_count(server, runs):
    client, _ = server
    assert client.get("/models/motion").json()["session_input"] == "frames"
    sid = _open(client, "motion")
    rows = [[1.0, -1.0], [2.0, 1.0], [0.5, 0.0]]
    reply = client.post(f"/sessions/{sid}/step", json={"frames": rows}).json()
    want = load_run(runs["motion"]).predict([rows])[0]
    assert reply["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
    bad = client.post(f"/sessions/{sid}/step", json={"frames": [[1.0, 2.0, 3.0]]})
    assert bad.status_code == 422 and "(steps, 2)" in bad.json()["detail"]
    assert client.get(f"/sessions/{sid}").json()["steps"] == 3
    got = client.post("/models/motion/classify", json={"series": [rows]}).json()
    assert got["predictions"][0]["label"] == want["label"]


def test_seq2seq_session_equals_the_decoder_stream(server, runs):
    client, _ = server
    sid = _open(client, "g2p", source="cat", top_k=3)
    reply = client.post(f"/sessions/{sid}/step", json={"tokens": ["K"]}).json()
    g2p = load_run(runs["g2p"])
    vocab, stream = g2p.vocab, g2p.open_stream("cat")
    p = stream.feed(torch.tensor([EOS_ID, *vocab.target.ids(["K"])]))[-1].exp()
    p[[PAD_ID, UNK_ID]] = 0
    top = p.topk(3)
    assert [d["token"] for d in reply["next"]] == [vocab.target.tokens[i] for i in top.indices]
    assert client.post(f"/sessions/{sid}/step", json={"tokens": ["QQ"]}).status_code == 422
    assert client.post("/sessions", json={"model": "g2p", "options": {}}).status_code == 422


def test_models_that_read_the_future_refuse_sessions(server):
    client, _ = server
    assert client.get("/models/tagger").json()["sessions"] is False
    r = client.post("/sessions", json={"model": "tagger"})
    assert r.status_code == 400 and "tag" in r.json()["detail"]


def test_music_generate_and_session(server, runs):
    if "chorales" not in runs:
        pytest.skip("music21 and mido are not installed")
    client, _ = server
    out = client.post("/models/chorales/generate", json={"length": 4, "seed": 1}).json()
    assert len(out["frames"]) == 4 and base64.b64decode(out["midi_base64"])[:4] == b"MThd"
    primer = {"length": 2, "seed": 1, "frames": [[60, 64, 67]]}
    assert len(client.post("/models/chorales/generate", json=primer).json()["frames"]) == 3
    streamed = client.post("/models/chorales/generate", json=primer | {"stream": True})
    assert streamed.status_code == 422 and "does not stream" in streamed.json()["detail"]
    sid = _open(client, "chorales")
    reply = client.post(f"/sessions/{sid}/step", json={"frames": [[60, 64, 67], [62]]}).json()
    assert all(0 <= d["p"] <= 1 for d in reply["next"]) and reply["steps"] == 3
    bad = client.post(f"/sessions/{sid}/step", json={"frames": [[200]]})
    assert bad.status_code == 422 and "pitch 200" in bad.json()["detail"]


def test_stored_sessions_that_no_longer_fit_are_skipped(runs, tmp_path):
    state = tmp_path / "s.sqlite"
    store = Store(state)
    rows = [Row("a" * 32, "", "tagger", {}, b"junk", 1, 0.0)]  # its dir now holds a tagger
    rows.append(Row("b" * 32, "", "char", {"top_k": 5}, b"junk", 1, 0.0))  # unreadable state
    rows.append(Row("c" * 32, "", "gone", {}, b"junk", 1, 0.0))  # a model not served now
    store.save(rows)
    store.close()
    with serving([runs["char"], runs["tagger"]], state) as (url, _):
        assert httpx.get(f"{url}/health").json()["sessions"] == 0
        assert httpx.get(f"{url}/sessions/{'b' * 32}").status_code == 404
    store = Store(state)
    assert {r.id for r in store.load()} == {"a" * 32, "b" * 32, "c" * 32}  # kept, not lost
    store.close()
