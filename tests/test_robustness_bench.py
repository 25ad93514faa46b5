"""bench/robustness.py's machinery: how an end is classified, the tampered checkpoints it
makes, and a run of a few cases end to end (forked and as real processes) into results files
of the benchmarks' shape."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from elman.train.checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint

BENCH = Path(__file__).parents[1] / "bench"


@pytest.fixture()
def rb(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the bench scripts import `harness` by name
    return importlib.import_module("robustness")


def test_outcomes(rb):
    assert rb.outcome(2, "warning: x\nelman: error: --hidden must be >= 1, got -1\n") == "error"
    usage = "usage: elman train charlm [-h]\nelman train charlm: error: argument --hidden: bad\n"
    assert rb.outcome(2, usage) == "error"
    assert (
        rb.outcome(2, "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n") == "traceback"
    )
    assert rb.outcome(1, "") == "traceback"
    assert rb.outcome(-6, "terminate called") == "crash"
    assert rb.outcome(0, "") == "ok"
    cpp = "elman: error: empty(): overflow\nframe #0: c10::Error\nframe #1: x\nframe #2: y\n"
    assert rb.outcome(2, cpp) == "unclear"
    assert rb.outcome(2, "Error: something\n") == "unclear"
    assert rb.outcome(None, "") == "hang" and rb.outcome(None, "", slow_ok=True) == "busy"
    assert rb.last_line(cpp) == "elman: error: empty(): overflow (and 3 more lines)"
    assert rb.reply_outcome(422, b'{"detail": "x"}', False) == "error"
    assert rb.reply_outcome(404, b"not json", False) == "unclear"
    assert rb.reply_outcome(500, b"", True) == "5xx"
    assert rb.reply_outcome(422, b'{"detail": "x"}', True) == "traceback"
    assert rb.reply_outcome(None, b"", False) == "hang"


def test_tampered_headers_keep_the_tensors(rb, tmp_path):
    meta = {"task": "charlm", "task_config": {"model": {"hidden": 8}}, "rng_python": "(1,)"}
    path = save_checkpoint(tmp_path / "last.safetensors", {"w": torch.ones(2, 3)}, meta)
    for kind in ("not-object", "invalid-json", "config-mismatch", "other-task", "nested-rng"):
        copy = tmp_path / f"{kind}.safetensors"
        copy.write_bytes(path.read_bytes())
        rb.rewrite_header(copy, lambda text, kind=kind: rb.tamper(text, kind))
        if kind in ("not-object", "invalid-json"):
            with pytest.raises(CheckpointError, match=kind.split("-")[-1].replace("json", "JSON")):
                read_meta(copy)
            continue
        tensors, got = load_checkpoint(copy)
        assert torch.equal(tensors["w"], torch.ones(2, 3))
        changed = {
            "config-mismatch": got["task_config"]["model"]["hidden"] == 17,
            "other-task": got["task"] == "forecast",
            "nested-rng": got["rng_python"] == "(" * 100_000,
        }
        assert changed[kind], kind


def test_numeric_options_come_from_the_parser(rb):
    assert {"--length", "--temperature", "--top-p"} <= set(rb.numeric_options(["generate"]))
    cases = rb.numbers("generate", ["generate", "{run:charlm}"], ["--length"])
    assert [c.args[-1] for c in cases] == list(rb.BAD_NUMBERS)
    assert [c.expect for c in cases].count("error") == 1 and all(c.slow_ok for c in cases)
    assert rb.needed_runs(cases, http=False) == ["charlm"]


@pytest.mark.slow  # the bench as a subprocess
@pytest.mark.parametrize("mode", [[], ["--exec"]])
def test_a_few_cases_end_to_end(tmp_path, mode):
    """NaN for three integer options: argparse refuses each, a clear error; the results
    files have the benchmarks' shape."""
    cmd = [sys.executable, str(BENCH / "robustness.py"), "--only", "train charlm"]
    cmd += ["--match", "NaN", "--limit", "3", "--out", str(tmp_path), *mode]
    cmd += ["--slow-timeout", "120"]  # a loaded machine may take 15 s to start a process
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tmp_path / "robustness.json").read_text())
    assert doc["benchmark"] == "robustness" and doc["counts"] == {"train charlm": {"error": 3}}
    rows = {r["name"]: r for r in doc["rows"]}
    assert set(rows) == {
        "train charlm: tracebacks",
        "train charlm: hangs",
        "total: tracebacks",
        "total: server_5xx",
        "total: hangs",
    }
    assert all(r["target"] == 0 and r["better"] == "lower" and r["met"] for r in rows.values())
    assert doc["failing"] == [] and "partial" not in doc
    assert "| train charlm | 3 | 3 |" in (tmp_path / "robustness.md").read_text()
