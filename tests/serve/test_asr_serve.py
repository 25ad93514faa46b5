"""Speech recognisers over HTTP (a real uvicorn server on loopback): sessions fed PCM16
chunks end with the one-shot and the Python transcript, survive a restart between steps,
the one-shot endpoint reads files (resampled, downmixed) and raw PCM, bad audio is a JSON
4xx naming the field, and a bidirectional model transcribes but refuses sessions."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest

from elman.data.speech.audio import float_to_pcm16, resample
from elman.serve.config import Limits
from elman.tasks.asr.decoding import Decoding
from elman.tasks.registry import load_run
from tests.serve.conftest import serving
from tests.speech import tiny_corpus, tiny_run  # skips without soundfile, espeakng, jiwer

sf = pytest.importorskip("soundfile")

pytestmark = pytest.mark.slow  # trains two tiny recognisers and starts a server

LIMITS = Limits(steps=200, batch=3)  # 200 frames of 30 ms: 6 s of audio in one request


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("asr-serve")
    corpus = tiny_corpus(root)
    uni = tiny_run(corpus, root / "uni", "--no-bidirectional")
    bi = tiny_run(corpus, root / "bi")
    wav = sorted((corpus / "test").glob("*.wav"))[0]
    return {"uni": uni, "bi": bi, "wav": wav, "root": root}


@pytest.fixture(scope="module")
def client(runs):
    state = runs["root"] / "sessions.sqlite"
    with (
        serving([runs["uni"], runs["bi"]], state, limits=LIMITS) as (url, _),
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        yield c


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encoded(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def pcm_chunks(samples, size: int) -> list[str]:
    pcm = float_to_pcm16(samples)  # exact: the samples were read from a 16-bit file
    return [b64(pcm[i : i + 2 * size]) for i in range(0, len(pcm), 2 * size)]


def transcribe(client, name: str, items: list[bytes], **body) -> httpx.Response:
    return client.post(f"/models/{name}/transcribe", json={"audio": [b64(x) for x in items]} | body)


def _open(client, model: str, **options) -> str:
    r = client.post("/sessions", json={"model": model, "options": options})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_session_of_pcm16_chunks_ends_with_the_one_shot_and_python_transcript(client, runs):
    run = load_run(runs["uni"])
    info = client.get("/models/uni").json()
    assert info["session_input"] == "audio" and info["rate"] == run.config.rate
    assert info["max_seconds"] == run.config.max_seconds
    samples = run.samples_of(runs["wav"])
    sid = _open(client, "uni", timings=True)
    for chunk in pcm_chunks(samples, 4001):  # odd sample counts, split across frames
        reply = client.post(f"/sessions/{sid}/step", json={"audio": chunk}).json()
    want = run.transcribe([runs["wav"]], timings=True)[0]
    words = [{"word": w, "start": a, "end": b} for w, a, b in want["words"]]
    assert want["text"] and reply["text"] == want["text"] and reply["words"] == words
    assert reply["seconds"] == pytest.approx(len(samples) / run.config.rate, abs=1e-4)
    assert reply["steps"] == reply["frames"] == client.get(f"/sessions/{sid}").json()["steps"]
    one = transcribe(client, "uni", [runs["wav"].read_bytes()], timings=True).json()
    assert one["transcripts"] == [{"text": want["text"], "words": words}]
    raw = transcribe(client, "uni", [float_to_pcm16(samples)], format="pcm16").json()
    assert raw["transcripts"] == [{"text": want["text"], "words": None}]


def test_a_session_continues_after_a_restart_from_its_stored_state(runs, tmp_path):
    run = load_run(runs["uni"])
    chunks = pcm_chunks(run.samples_of(runs["wav"]), 3000)
    half = len(chunks) // 2
    state = tmp_path / "s.sqlite"
    with serving([runs["uni"]], state) as (url, _):
        sid = httpx.post(f"{url}/sessions", json={"model": "uni"}).json()["id"]
        for chunk in chunks[:half]:
            before = httpx.post(f"{url}/sessions/{sid}/step", json={"audio": chunk}).json()
    with serving([runs["uni"]], state) as (url, _):  # the stream comes back from its bytes
        assert httpx.get(f"{url}/sessions/{sid}").json()["steps"] == before["frames"]
        for chunk in chunks[half:]:
            reply = httpx.post(f"{url}/sessions/{sid}/step", json={"audio": chunk}).json()
    assert reply["text"] == run.transcribe([runs["wav"]])[0]["text"]


def test_transcribe_reads_files_at_other_rates_and_channels(client, runs, tmp_path):
    run = load_run(runs["uni"])
    x = run.samples_of(runs["wav"]).numpy()
    slow = resample(x, run.config.rate, 22050)
    path = tmp_path / "22050.wav"
    path.write_bytes(encoded(slow, 22050))
    stereo = encoded(np.stack([slow, slow], axis=1), 22050)
    flac = encoded(x, run.config.rate, "FLAC")
    got = transcribe(client, "uni", [path.read_bytes(), stereo, flac]).json()["transcripts"]
    want = run.transcribe([path, runs["wav"]])
    assert [g["text"] for g in got] == [want[0]["text"], want[0]["text"], want[1]["text"]]
    beam = transcribe(client, "uni", [flac], beam=4).json()["transcripts"][0]["text"]
    assert beam == run.transcribe([runs["wav"]], Decoding(beam=4))[0]["text"]
    sid = _open(client, "uni", format="file")  # a session of small files, resampled
    reply = client.post(f"/sessions/{sid}/step", json={"audio": b64(path.read_bytes())}).json()
    assert reply["text"] == want[0]["text"]


def test_a_bidirectional_model_transcribes_but_refuses_sessions(client, runs):
    r = client.post("/sessions", json={"model": "bi"})
    assert r.status_code == 400 and "--no-bidirectional" in r.json()["detail"]
    assert client.get("/models/bi").json()["sessions"] is False
    got = transcribe(client, "bi", [runs["wav"].read_bytes()]).json()["transcripts"]
    assert got[0]["text"] == load_run(runs["bi"]).transcribe([runs["wav"]])[0]["text"]


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


BAD_TRANSCRIBE = [
    ({"audio": ["not base64!"]}, "audio[0]", "base64"),
    ({"audio": [b64(b"\x00\x01\x02")], "format": "pcm16"}, "audio[0]", "even number of bytes"),
    ({"audio": [b64(b"hello, not audio" * 8)]}, "audio[0]", "could not be decoded"),
    ({"audio": [""]}, "audio[0]", "got none"),
    ({"audio": [b64(encoded(silence(0), 16000))]}, "audio[0]", "no samples"),
    ({"audio": [b64(encoded(silence(31), 8000, "FLAC"))]}, "audio[0]", "max_seconds=30"),
    ({"audio": [b64(float_to_pcm16(silence(7)))], "format": "pcm16"}, "audio[0]", "200 steps"),
    ({"audio": [b64(float_to_pcm16(silence(0.001)))], "format": "pcm16"}, "audio[0]", "short"),
    ({"audio": []}, "audio", "at least one"),
    ({"audio": ["AAAA"] * 4, "format": "pcm16"}, "audio", "limit of 3"),
    ({"audio": ["AAAA"], "beam": 65}, "beam", "less than or equal"),
    ({"audio": ["AAAA"], "format": "mp3"}, "format", "'file' or 'pcm16'"),
]


@pytest.mark.parametrize(("body", "field", "says"), BAD_TRANSCRIBE)
def test_bad_audio_is_a_json_4xx_naming_the_field(client, body, field, says):
    r = client.post("/models/uni/transcribe", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    text = detail if isinstance(detail, str) else str([(e["loc"], e["msg"]) for e in detail])
    assert field in text and says in text, text


def test_bad_session_steps_are_refused_and_leave_the_session_as_it_was(client):
    sid = _open(client, "uni")
    ok = client.post(f"/sessions/{sid}/step", json={"audio": b64(float_to_pcm16(silence(1)))})
    frames = ok.json()["frames"]
    five = b64(float_to_pcm16(silence(5.5)))
    cases = [
        ({"audio": "%%%"}, "base64"),
        ({"audio": b64(b"\x01\x02\x03")}, "even number of bytes"),
        ({"audio": ""}, "got none"),
        ({"values": [0.0]}, "reads `audio`"),
        ({"audio": b64(float_to_pcm16(silence(7)))}, "200 steps"),
    ]
    for body, says in cases:
        r = client.post(f"/sessions/{sid}/step", json=body)
        assert r.status_code == 422 and says in r.json()["detail"], (body.keys(), r.text)
    assert client.get(f"/sessions/{sid}").json()["steps"] == frames
    for _ in range(5):  # 1 + 5 x 5.5 s = 28.5 s; the next chunk would pass 30 s
        assert client.post(f"/sessions/{sid}/step", json={"audio": five}).status_code == 200
    r = client.post(f"/sessions/{sid}/step", json={"audio": five})
    assert r.status_code == 422 and "max_seconds=30" in r.json()["detail"]
    assert "new session" in r.json()["detail"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"format": "mp3"}, "options.format"),
        ({"timings": 1}, "options.timings"),
        ({"x": 1}, "['x']"),
    ],
)
def test_bad_session_options_are_refused(client, options, says):
    r = client.post("/sessions", json={"model": "uni", "options": options})
    assert r.status_code == 422 and says in r.json()["detail"]
