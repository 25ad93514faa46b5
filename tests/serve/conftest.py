"""Tiny trained runs of every task, and a real uvicorn server on a loopback port."""

from __future__ import annotations

import importlib.util
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from elman.cli import main  # noqa: E402
from elman.data.text import bundled_corpus_path, read_text  # noqa: E402
from elman.serve.app import create_app  # noqa: E402
from elman.serve.config import Limits, ServeConfig  # noqa: E402
from elman.serve.launch import free_port  # noqa: E402
from elman.serve.registry import load_models  # noqa: E402

RUN = ["--steps", "3", "--eval-every", "3", "--no-progress"]
SENTENCES = ["the cat sat on the mat", "a dog ran to the cat", "the mat was red"] * 6
PAIRS = [("cat", "K AE T"), ("tac", "T AE K"), ("act", "AE K T"), ("at", "AE T")] * 5


def _train(root: Path) -> dict[str, Path]:
    (root / "t.txt").write_text(read_text(bundled_corpus_path())[:4000], encoding="utf-8")
    (root / "w.txt").write_text("\n".join(SENTENCES) + "\n")
    rows = [("great film", "pos"), ("awful plot", "neg"), ("a great plot", "pos")] * 5
    (root / "c.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    tagged = "the\tat\ncat\tnn\nran\tvbd\n\na\tat\ndog\tnn\nsat\tvbd\n"
    (root / "t.tsv").write_text((tagged + "\n") * 5)
    (root / "p.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS))
    y = np.sin(np.arange(120) / 3) + np.random.default_rng(0).normal(0, 0.05, 120)
    (root / "s.csv").write_text("value\n" + "".join(f"{v}\n" for v in y))
    cases = [f"{k},{k + 1},{k % 3}:{-k},{k},1:{'up' if k % 2 else 'down'}" for k in range(12)]
    header = "@problemName m\n@univariate false\n@dimensions 2\n@equalLength true\n"
    (root / "m.ts").write_text(header + "@classLabel true up down\n@data\n" + "\n".join(cases))
    small = ["--hidden", "8"]
    commands = {
        "char": ["charlm", str(root / "t.txt"), "--embedding", "8", "--layers", "2"],
        "word": ["wordlm", str(root / "w.txt"), "--embedding", "8", "--min-freq", "1"],
        "classes": [
            "classify",
            "--train",
            str(root / "c.csv"),
            "--embedding",
            "6",
            "--no-bidirectional",
        ],
        "motion": ["classify", "--ts", str(root / "m.ts"), "--no-bidirectional", "--no-conv"],
        "tagger": ["tag", "--train", str(root / "t.tsv"), "--valid", str(root / "t.tsv")],
        "g2p": ["seq2seq", "--pairs", str(root / "p.tsv"), "--embedding", "6", "--max-target", "8"],
        "sales": ["forecast", str(root / "s.csv"), "--target", "value", "--no-calendar"],
    }
    extra = {
        "char": ["--batch-size", "4", "--seq-len", "16", "--sample-length", "5"],
        "word": ["--batch-size", "2", "--seq-len", "5", "--sample-length", "5"],
        "classes": ["--batch-size", "4"],
        "motion": ["--batch-size", "4"],
        "tagger": ["--min-freq", "1", "--char-filters", "4", "--batch-size", "2"],
        "g2p": ["--batch-size", "4"],
        "sales": ["--no-normalize", "--context", "12", "--horizon", "4", "--layers", "1"],
    }
    if importlib.util.find_spec("music21") and importlib.util.find_spec("mido"):
        cache = ["--cache", str(root / "chorales.safetensors")]
        commands["chorales"] = ["music", "--chorales", "--limit", "5", *cache]
        extra["chorales"] = ["--batch-size", "2"]
    runs = {}
    for name, args in commands.items():
        out = root / name
        assert main(["train", *args, "--out", str(out), *small, *extra[name], *RUN]) == 0, name
        runs[name] = out
    return runs


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    return _train(tmp_path_factory.mktemp("serve-runs"))


@contextmanager
def serving(paths, state: Path, **options):
    """A uvicorn server of ``paths`` on a free loopback port, in a thread; yields its URL."""
    limits = options.pop("limits", Limits())
    config = ServeConfig(state=state, limits=limits, **options)
    app = create_app(load_models(list(paths)), config)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)
