"""``elman export DIR --format onnx`` for every task, on tiny runs of two training steps:
the graphs are written and checked on random and held-out inputs, and the summary says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elman.cli import main

pytest.importorskip("onnxruntime")

RUN = ["--steps", "2", "--eval-every", "2", "--no-progress"]
REVIEWS = [("great film", "pos"), ("awful plot", "neg"), ("a great plot", "pos")] * 5
TAGGED = "the\tat\ncat\tnn\nran\tvbd\n\na\tat\ndog\tnn\nsat\tvbd\n"
PAIRS = [("cat", "K AE T"), ("act", "AE K T"), ("tack", "T AE K"), ("at", "AE T")] * 3


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in REVIEWS))
    (tmp_path / "test.csv").write_text("text,label\nshort film,pos\nthe awful awful plot,neg\n")
    (tmp_path / "train.tsv").write_text((TAGGED + "\n") * 4)
    (tmp_path / "valid.tsv").write_text(TAGGED + "\nthe\tat\ndog\tnn\n")
    (tmp_path / "pairs.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS))
    (tmp_path / "test.tsv").write_text("cat\tK AE T\ntack\tT AE K\nat\tAE T\n")
    return tmp_path


def _export(capsys, out: Path, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["export", str(out), "--format", "onnx", *extra]) == 0
    found = json.loads(capsys.readouterr().out)
    assert max(found["max_abs_diff"].values()) < 1e-4
    return found


def test_classifier_exports_with_lengths(files, capsys):
    data = ["--train", str(files / "train.csv"), "--test", str(files / "test.csv")]
    tiny = ["--hidden", "4", "--embedding", "4", "--batch-size", "4"]
    for cell in ("lstm", "ln-gru"):
        out = files / cell
        assert (
            main(["train", "classify", *data, "--out", str(out), *tiny, "--cell", cell, *RUN]) == 0
        )
        found = _export(capsys, out)
        assert found["task"] == "classify" and set(found["max_abs_diff"]) == {"random", "real"}
        assert Path(found["onnx"]) == out / "model-sequence.onnx" and Path(found["onnx"]).exists()
    assert main(["export", str(out), "--mode", "step"]) == 2
    assert "'step' is for language and music models" in capsys.readouterr().err


def test_tagger_exports_emissions_and_transitions(files, capsys):
    out = files / "t"
    data = ["--train", str(files / "train.tsv"), "--valid", str(files / "valid.tsv")]
    tiny = ["--word-embedding", "4", "--char-embedding", "3", "--char-filters", "4"]
    tiny += ["--hidden", "4", "--min-freq", "1", "--batch-size", "2"]
    assert main(["train", "tag", *data, "--out", str(out), *tiny, *RUN]) == 0
    found = _export(capsys, out, "--out", str(files / "tagger.onnx"))
    assert found["onnx"] == str(files / "tagger.onnx") and "real" in found["max_abs_diff"]
    import onnx

    outputs = [o.name for o in onnx.load(found["onnx"]).graph.output]
    assert outputs == ["emissions", "transitions", "start", "end"]


def test_seq2seq_exports_an_encoder_and_a_decoder_step(files, capsys):
    out = files / "s"
    data = ["--pairs", str(files / "pairs.tsv"), "--test", str(files / "test.tsv")]
    tiny = ["--embedding", "4", "--hidden", "4", "--batch-size", "4", "--max-target", "8"]
    assert main(["train", "seq2seq", *data, "--out", str(out), *tiny, *RUN]) == 0
    found = _export(capsys, out, "--out", str(files / "graphs"))
    assert set(found["onnx"]) == {"encoder", "decoder-step"}
    assert all(Path(p).parent == files / "graphs" for p in found["onnx"].values())
    assert set(found["max_abs_diff"]) == {
        f"{g}/{k}" for g in ("encoder", "decoder-step") for k in ("random", "real")
    }
    assert found["greedy_tokens_match"] and found["greedy_sources"] == 3
    assert main(["export", str(out), "--out", str(files / "one.onnx")]) == 2
    assert "give a folder" in capsys.readouterr().err


def test_forecasters_export_both_forms(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    import numpy as np

    days = pd.date_range("2020-01-01", periods=40, freq="D")
    values = 10 + np.sin(np.arange(40))
    promo = np.arange(40) % 3 == 0
    pd.DataFrame({"day": days, "sales": values, "promo": promo.astype(int)}).to_csv(
        tmp_path / "sales.csv", index=False
    )
    args = ["train", "forecast", str(tmp_path / "sales.csv"), "--time-col", "day"]
    args += ["--target", "sales", "--context", "8", "--horizon", "3", "--hidden", "4"]
    args += ["--layers", "1", "--samples", "4"]
    for name, extra in (
        ("ar", []),
        ("direct", ["--mode", "direct", "--future-covariates", "promo", "--cell", "ln-lstm"]),
    ):
        assert main([*args, *extra, "--out", str(tmp_path / name), *RUN]) == 0
        found = _export(capsys, tmp_path / name)
        assert found["task"] == "forecast" and set(found["max_abs_diff"]) == {"random", "real"}


def test_a_tolerance_too_tight_fails(files, capsys):
    out = files / "c"
    data = ["--train", str(files / "train.csv")]
    assert main(["train", "classify", *data, "--out", str(out), "--hidden", "4", *RUN]) == 0
    capsys.readouterr()
    assert main(["export", str(out), "--tolerance", "1e-30"]) == 2
    assert "outputs differ from PyTorch by" in capsys.readouterr().err


def test_a_run_whose_data_is_gone_is_checked_on_random_inputs(files):
    from elman.export.run import export_run

    out = files / "c"
    data = ["--train", str(files / "train.csv")]
    assert main(["train", "classify", *data, "--out", str(out), "--hidden", "4", *RUN]) == 0
    (files / "train.csv").unlink()
    with pytest.warns(UserWarning, match="no real-data check"):
        found = export_run(out, files / "c.onnx")
    assert set(found["max_abs_diff"]) == {"random"} and (files / "c.onnx").exists()
