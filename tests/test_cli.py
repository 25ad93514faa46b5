"""Every CLI command on a tiny configuration, plus its error handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from elman.cli import main
from elman.data.text import bundled_corpus_path, read_text
from elman.tasks.lm.run import CHARLM
from elman.train.checkpoint import load_checkpoint

TINY = [
    "--cell",
    "gru",
    "--embedding",
    "8",
    "--hidden",
    "16",
    "--layers",
    "1",
    "--batch-size",
    "4",
    "--seq-len",
    "16",
    "--steps",
    "6",
    "--eval-every",
    "3",
    "--no-progress",
    "--sample-length",
    "20",
]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "t.txt"
    path.write_text(read_text(bundled_corpus_path())[:5000], encoding="utf-8")
    return path


def test_train_generate_evaluate_resume(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "charlm", str(text_file), "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "nats/char" in printed and "bits/char" in printed
    assert main(["generate", str(out), "--prompt", "KING", "--length", "30", "--seed", "2"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("KING") and len(first) == len("KING") + 30 + 1
    assert main(["generate", str(out), "--prompt", "KING", "--length", "30", "--seed", "2"]) == 0
    assert capsys.readouterr().out == first
    assert main(["evaluate", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data"] == "validation split" and result["nats_per_char"] > 0
    assert main(["evaluate", str(out), str(text_file)]) == 0
    assert main(["resume", str(out), "--steps", "9"]) == 0
    assert CHARLM.load(out, "last").meta["position"]["step"] == 9


def test_errors_are_clear_and_overwrite_nothing(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "charlm", str(text_file), "--out", str(out), *TINY]) == 0
    before = (out / "last.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train", "charlm", str(text_file), "--out", str(out), *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "last.safetensors").read_bytes() == before
    assert main(["generate", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "best.safetensors").write_bytes(b"not a checkpoint")
    assert main(["generate", str(tmp_path / "bad")]) == 2
    assert "truncated or not a safetensors file" in capsys.readouterr().err
    assert (
        main(["train", "charlm", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "m")]) == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert main(["generate", str(out), "--prompt", "€€"]) == 2
    assert "lacks" in capsys.readouterr().err
    assert main(["train", "charlm", "--out", str(tmp_path / "x"), "--hidden", "-3"]) == 2
    assert "hidden must be a positive integer, got -3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "charlm", "--out", str(tmp_path / "y"), "--cell", "xlstm"])


def test_explain_a_character_model(tmp_path, text_file, capsys):
    out, expl = tmp_path / "run", tmp_path / "expl"
    lstm = [a if a != "gru" else "lstm" for a in TINY]
    assert main(["train", "charlm", str(text_file), "--out", str(out), *lstm]) == 0
    capsys.readouterr()
    text = "KING:\nGo on, and went.\nAnd so"
    args = ["explain", str(out), text, "--signal", "line-position", "--out", str(expl)]
    assert main([*args, "--flow-steps", "20", "--kind", "c"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["unit"] == found["top_units"][0][0] and len(found["top_units"]) == 10
    assert set(found["saturation"][0]) == {"i", "f", "g", "o"}
    assert len(found["saliency"]["occlusion"]) == len(text)
    assert len(found["saliency"]["target_piece"]) == 1  # the predicted next character
    assert set(found["gradient_flow"]) == {"trained lstm", "fresh rnn", "fresh lstm", "fresh gru"}
    assert all(len(v) == 20 for v in found["gradient_flow"].values())
    assert all(Path(f).stat().st_size > 0 for f in found["files"].values())
    unit = found["unit"]
    assert (expl / f"unit-{unit}.html").exists() and (expl / "gradient-flow.png").exists()
    signal = tmp_path / "signal.txt"
    signal.write_text("1 2 3")
    for extra, message in [
        (["--unit", "999"], "unit: expected an index in [0, 16)"),
        (["--signal", str(signal)], "holds 3 numbers; the text has"),
        (["--kind", "z"], "kind: expected"),
        (["--layer", "4"], "layer: expected an index"),
    ]:
        assert main(["explain", str(out), text, "--out", str(expl), *extra]) == 2
        assert message in capsys.readouterr().err


def test_export_a_character_model_to_onnx(tmp_path, text_file, capsys):
    pytest.importorskip("onnxruntime")
    for cell, mode in (("gru", "sequence"), ("ln-lstm", "sequence")):  # LN: an ONNX Scan
        out = tmp_path / cell
        tiny = [a if a != "gru" else cell for a in TINY]
        assert main(["train", "charlm", str(text_file), "--out", str(out), *tiny]) == 0
        capsys.readouterr()
        assert main(["export", str(out), "--format", "onnx"]) == 0
        found = json.loads(capsys.readouterr().out)
        assert found["mode"] == mode and Path(found["onnx"]).stat().st_size > 0
        assert set(found["max_abs_diff"]) == {"random", "real"}
        assert max(found["max_abs_diff"].values()) < 1e-4
    assert (
        main(["export", str(tmp_path / "gru"), "--mode", "step", "--out", str(tmp_path / "s.onnx")])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["mode"] == "step"
    assert main(["export", str(tmp_path / "ln-lstm"), "--mode", "step"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "step"
    assert main(["export", str(tmp_path / "gru"), "--tolerance", "0"]) == 2
    assert "--tolerance" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "charlm", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--cell",
        "--hidden",
        "--seq-len",
        "--lr",
        "--clip-norm",
        "--schedule",
        "--patience",
        "--time-limit",
        "--anneal-by-time",
        "--accumulate",
        "--seed",
    ):
        assert option in text


def test_anneal_by_time_flag_reaches_the_checkpoint(tmp_path, text_file, capsys):
    out = tmp_path / "timed"
    args = ["train", "charlm", str(text_file), "--out", str(out), *TINY, "--sample-length", "0"]
    assert main([*args, "--time-limit", "600", "--anneal-by-time"]) == 0
    _, meta = load_checkpoint(out / "last.safetensors", "charlm")
    assert meta["train"]["anneal_by_time"] is True and meta["train"]["time_limit"] == 600
    capsys.readouterr()
    assert main([*args, "--overwrite", "--anneal-by-time"]) == 2
    assert "anneal_by_time needs a time_limit" in capsys.readouterr().err
    assert load_checkpoint(out / "last.safetensors", "charlm")[1]["train"] == meta["train"]


@pytest.mark.slow  # torchrun: two processes
def test_data_parallel_run_equals_one_process_with_the_same_global_batch(tmp_path, text_file):
    args = ["train", "charlm", str(text_file), *TINY, "--sample-length", "0", "--dropout", "0"]
    single = tmp_path / "single"
    assert main([*args, "--out", str(single)]) == 0
    ddp = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "elman.cli",
        *args,
        "--out",
        str(ddp),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a = CHARLM.load(single, "last").model
    b = CHARLM.load(ddp, "last").model
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4, msg=name)
