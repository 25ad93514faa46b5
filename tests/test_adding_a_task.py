"""Adding a task is one package and one registry line: a toy task that lives only in
``tests/fixtures/toytask`` is registered by one line and then trains, resumes, evaluates,
predicts, exports and refuses what it does not answer through the unchanged CLI, exporter and
streams (and a server opens it, with the base adapter's no endpoints)."""

from __future__ import annotations

import json

import pytest

from elman.cli import main
from elman.tasks import registry
from tests.helpers import refused


@pytest.fixture()
def toy(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(registry.TASKS, "toy", "tests.fixtures.toytask.run:SPEC")  # the line
    out = tmp_path / "toy"
    assert main(["train", "toy", "--out", str(out), "--hidden", "6", "--no-progress"]) == 0
    assert "validation: loss" in capsys.readouterr().out
    return out


def test_a_registered_task_answers_the_shared_commands(toy, tmp_path, capsys):
    assert registry.task_of(toy) == "toy"
    assert main(["evaluate", str(toy)]) == 0
    assert json.loads(capsys.readouterr().out)["mse"] >= 0
    rows = tmp_path / "rows.txt"
    rows.write_text("1 2 3 4 5 6\n0 0 0 0 0 1\n")
    assert main(["predict", str(toy), str(rows)]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in found] == [[1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 1]]
    assert main(["resume", str(toy), "--steps", "6"]) == 0
    assert "validation: loss" in capsys.readouterr().out
    refused(capsys, ["generate", str(toy)], "`elman generate` needs a", "holds a toy model")
    refused(capsys, ["predict", str(toy), str(rows), "--top-k", "2"], "--top-k is for wordlm")
    refused(capsys, ["translate", str(toy)], "needs a seq2seq model", "holds a toy model")


def test_a_registered_task_exports_streams_and_serves(toy, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    assert main(["export", str(toy), "--out", str(tmp_path / "toy.onnx")]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "toy"
    from elman.tasks.streams import open_stream

    with pytest.raises(ValueError, match="a toy model cannot stream: toy models read whole"):
        open_stream(toy)
    pytest.importorskip("fastapi")
    from elman.serve.registry import load_one

    info = load_one(toy).info()
    assert info["task"] == "toy" and info["endpoints"] == [] and info["cell"] == "GRU"
