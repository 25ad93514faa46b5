"""The seq2seq commands on tiny configurations: train, translate, explain, evaluate, resume."""

from __future__ import annotations

import json

import pytest

from elman.cli import main
from elman.tasks.registry import task_of

TINY = ["--embedding", "6", "--hidden", "6", "--batch-size", "4", "--max-target", "12"]
RUN = ["--steps", "6", "--eval-every", "3", "--no-progress"]
PAIRS = [("cat", "K AE T"), ("act", "AE K T"), ("tack", "T AE K"), ("at", "AE T")] * 3


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "pairs.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS))
    (tmp_path / "words.txt").write_text("cat\ntac\nqat\n")
    (tmp_path / "cmudict.dict").write_text(
        "".join(f"{w} {p.replace('AE', 'AE1')}\n" for w, p in PAIRS[:4])
        + "".join(f"w{i} K AE1 T\n" for i in range(40))
    )
    return tmp_path


def test_train_translate_explain_evaluate_resume(files, capsys):
    out = files / "run"
    args = ["train", "seq2seq", "--pairs", str(files / "pairs.tsv"), "--out", str(out)]
    assert main([*args, *TINY, *RUN]) == 0
    assert task_of(out) == "seq2seq"
    capsys.readouterr()

    assert (
        main(["translate", str(out), str(files / "words.txt"), "--beam", "3", "--nbest", "2"]) == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in rows] == ["cat", "tac", "qat"]
    assert all(1 <= len(r["nbest"]) <= 2 and r["output"] == r["nbest"][0]["output"] for r in rows)
    assert rows[2]["unknown"] == ["q"]

    assert main(["translate", str(out), str(files / "words.txt"), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("input,output,nbest")

    png = files / "att.png"
    assert main(["explain", str(out), "cat", "--png", str(png)]) == 0
    assert png.stat().st_size > 0 and json.loads(capsys.readouterr().out)["png"] == str(png)

    assert main(["evaluate", str(out), str(files / "pairs.tsv"), "--beam", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["wer"] <= 1 and result["words"] == 4

    assert main(["resume", str(out), "--steps", "9"]) == 0


def test_cmudict_source_and_its_split(files, capsys):
    out = files / "g2p"
    args = ["train", "seq2seq", "--cmudict", str(files / "cmudict.dict"), "--out", str(out)]
    assert main([*args, *TINY, *RUN, "--attention", "none"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--split", "valid"]) == 0
    assert json.loads(capsys.readouterr().out)["data"] == "valid split"
    assert main(["explain", str(out), "cat"]) == 2
    assert "without attention" in capsys.readouterr().err


def test_bad_requests_fail_cleanly(files, capsys):
    assert main(["train", "seq2seq", "--out", str(files / "x"), *RUN]) == 2
    assert "--cmudict" in capsys.readouterr().err
    bad = files / "bad.tsv"
    bad.write_text("cat K AE T\n")
    assert main(["train", "seq2seq", "--pairs", str(bad), "--out", str(files / "y"), *RUN]) == 2
    assert "line 1: expected 'source<TAB>target'" in capsys.readouterr().err

    out = files / "run"
    main(["train", "seq2seq", "--pairs", str(files / "pairs.tsv"), "--out", str(out), *TINY, *RUN])
    capsys.readouterr()
    assert main(["translate", str(out), str(files / "words.txt"), "--beam", "0"]) == 2
    assert "beam must be an integer >= 1, got 0" in capsys.readouterr().err
    empty = files / "empty.txt"
    empty.write_text("cat\n\nact\n")
    assert main(["translate", str(out), str(empty)]) == 2
    assert "input line(s) [2] are empty" in capsys.readouterr().err
    assert main(["predict", str(out), str(files / "words.txt")]) == 2
    assert "`elman translate`" in capsys.readouterr().err  # what to use instead
