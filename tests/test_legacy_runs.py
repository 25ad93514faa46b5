"""Run directories written before the task packages moved (``tests/fixtures/legacy``: one tiny
run of every task, made by the commit in ``runs/MADE_BY``) still load, evaluate, generate,
predict, translate, forecast, stream, serve and export, and print what that code printed
(numbers to 1e-3 relative: another CPU may round the last digits differently)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import uuid
from pathlib import Path

import pytest

from elman.cli import main
from tests.fixtures.legacy.record import DATA_ROOT, HERE, commands, run, served, streams

EXPECTED = json.loads((HERE / "expected.json").read_text())
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
CASES = sorted(commands(HERE / "runs", DATA_ROOT))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A copy of the runs (commands write plots beside a run), with their data at the
    absolute path their headers record (put there atomically: two test workers may race)."""
    if not (DATA_ROOT / "sales.csv").exists():
        staging = DATA_ROOT.with_name(f"{DATA_ROOT.name}-{uuid.uuid4().hex}")
        shutil.copytree(HERE / "data", staging)
        try:
            staging.rename(DATA_ROOT)
        except OSError:  # another worker was first: its copy is the same
            shutil.rmtree(staging, ignore_errors=True)
    copy = tmp_path_factory.mktemp("legacy") / "runs"
    shutil.copytree(HERE / "runs", copy)
    return copy


def same_text(got: str, want: str) -> bool:
    """Equal text, numbers equal to 1e-3 relative (1e-4 absolute)."""
    if NUMBER.sub("#", got) != NUMBER.sub("#", want):
        return False
    pairs = zip(NUMBER.findall(got), NUMBER.findall(want), strict=True)
    return all(math.isclose(float(a), float(b), rel_tol=1e-3, abs_tol=1e-4) for a, b in pairs)


@pytest.mark.parametrize("name", CASES)
def test_a_legacy_run_answers_each_command_as_before(runs, name):
    if name.startswith("music") and not importlib.util.find_spec("music21"):
        pytest.skip("music21 is not installed")
    got, want = run(commands(runs, DATA_ROOT)[name], runs), EXPECTED[name]
    assert got["code"] == want["code"]
    assert same_text(got["stdout"], want["stdout"]), (got["stdout"], want["stdout"])


def test_legacy_streams_answer_as_before(runs):
    got, want = streams(runs), EXPECTED["streams"]
    assert got.keys() == want.keys()
    for task, found in got.items():
        if "refused" in want[task]:  # the why, to its first ';' (the hint names a module path)
            assert found["refused"].split(";")[0] == want[task]["refused"].split(";")[0]
        else:
            assert same_text(json.dumps(found), json.dumps(want[task])), task


def test_legacy_runs_are_served_as_before(runs):
    pytest.importorskip("fastapi")
    assert served(runs) == EXPECTED["served"]


@pytest.mark.parametrize("task", ["charlm", "wordlm", "classify", "tag", "seq2seq", "forecast"])
def test_a_legacy_run_exports_checked_onnx(runs, tmp_path, capsys, task):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "graphs"
    assert main(["export", str(runs / task), "--format", "onnx", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == task and summary["max_abs_diff"]
    assert summary["onnx"] and all(Path(p).is_file() for p in _paths(summary["onnx"]))


def _paths(onnx: str | dict) -> list[str]:
    return list(onnx.values()) if isinstance(onnx, dict) else [onnx]
