"""``elman serve`` as users run it: its own process, killed without warning and restarted
on its SQLite file with every session intact; refusals at start-up."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess

import httpx
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from elman.cli import main
from elman.serve.launch import launch
from elman.tasks.lm.stream import Stream
from elman.tasks.registry import load_run


def _start(run, state, *extra) -> tuple[subprocess.Popen, str]:
    return launch([run], "--state", str(state), "--log-level", "error", *extra)


@pytest.mark.slow  # `elman serve` processes, killed and restarted
def test_a_killed_server_resumes_every_session(runs, tmp_path):
    state = tmp_path / "sessions.sqlite"
    proc, url = _start(runs["char"], state)
    try:
        ids = [httpx.post(f"{url}/sessions", json={"model": "char"}).json()["id"] for _ in range(3)]
        for sid, text in zip(ids, ("KING", "lord", "sweet"), strict=True):
            assert httpx.post(f"{url}/sessions/{sid}/step", json={"text": text}).status_code == 200
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown hook runs: only per-step saves count
        proc.wait()
    proc, url = _start(runs["char"], state)
    try:
        loaded = load_run(runs["char"])
        model, vocab = loaded.model, loaded.vocab
        for sid, text in zip(ids, ("KING", "lord", "sweet"), strict=True):
            assert httpx.get(f"{url}/sessions/{sid}").json()["steps"] == len(text)
            reply = httpx.post(f"{url}/sessions/{sid}/step", json={"text": "s"}).json()
            top = Stream(model).feed(vocab.encode(text + "s"))[-1].exp().topk(5)
            assert [d["token"] for d in reply["next"]] == [vocab.chars[i] for i in top.indices]
    finally:
        proc.terminate()
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught


@pytest.mark.slow
def test_persist_at_shutdown_saves_on_sigterm(runs, tmp_path):
    state = tmp_path / "sessions.sqlite"
    proc, url = _start(runs["char"], state, "--persist", "shutdown")
    sid = httpx.post(f"{url}/sessions", json={"model": "char"}).json()["id"]
    httpx.post(f"{url}/sessions/{sid}/step", json={"text": "KING"})
    proc.terminate()  # a clean stop: the lifespan hook writes every state
    proc.wait(30)
    proc, url = _start(runs["char"], state, "--persist", "shutdown")
    try:
        assert httpx.get(f"{url}/sessions/{sid}").json()["steps"] == 4
    finally:
        proc.terminate()
        proc.wait(30)


def test_start_up_refusals(runs, tmp_path, capsys):
    pytest.importorskip("uvicorn")
    assert main(["serve", str(runs["char"]), "--host", "0.0.0.0"]) == 2
    assert "API token is required" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["serve", str(tmp_path / "empty")]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    both = [str(runs["char"]), str(runs["char"])]
    assert main(["serve", *both, "--state", str(tmp_path / "s.sqlite")]) == 2
    assert "share the name" in capsys.readouterr().err
    assert main(["serve", str(runs["char"]), "--threads", str(2**31)]) == 2
    assert f"threads: expected an integer in [1, 1024], got {2**31}" in capsys.readouterr().err
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    assert main(["serve", str(runs["char"]), "--state", str(tmp_path / "junk.sqlite")]) == 2
    assert "not a usable SQLite file" in capsys.readouterr().err
    other = tmp_path / "other.sqlite"  # a database of something else, with a sessions table
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE sessions (id TEXT, who TEXT)")
    assert main(["serve", str(runs["char"]), "--state", str(other)]) == 2
    err = capsys.readouterr().err
    assert "not a usable SQLite file" in err and str(other) in err and err.count("\n") == 1


def _tamper(path, header: str) -> None:
    """Rewrites the Elman header of the checkpoint ``path`` (its tensors kept)."""
    with safe_open(str(path), framework="pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118
    save_file(tensors, str(path), metadata=meta | {"elman": header})


def _header(path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["elman"])


@pytest.mark.parametrize("kind", ["char", "sales", "classes", "g2p"])
def test_tampered_checkpoint_headers_are_one_line_errors(runs, tmp_path, capsys, kind):
    pytest.importorskip("uvicorn")
    run = tmp_path / kind
    shutil.copytree(runs[kind], run)
    checkpoint = run / "best.safetensors"
    meta = _header(checkpoint)
    model = meta["task_config"]["model"]
    wider = {k: v * 2 if k in ("hidden", "hidden_size") else v for k, v in model.items()}
    assert wider != model, model
    headers = {
        "a list": "[1, 2]",
        "not JSON": "{not json",
        "no task": json.dumps({k: v for k, v in meta.items() if k != "task"}),
        "a config off the tensors": json.dumps(
            meta | {"task_config": meta["task_config"] | {"model": wider}}
        ),
        "no task_config": json.dumps({k: v for k, v in meta.items() if k != "task_config"}),
    }
    for what, header in headers.items():
        _tamper(checkpoint, header)
        assert main(["serve", str(run), "--state", str(tmp_path / "s.sqlite")]) == 2, what
        err = capsys.readouterr().err
        assert err.startswith("elman: error: ") and err.count("\n") == 1, (what, err)
        assert str(checkpoint) in err and "Traceback" not in err, (what, err)
    assert not (tmp_path / "s.sqlite").exists()  # refused before anything was written
