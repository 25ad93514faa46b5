"""The word LM, classification and tagging commands on tiny configurations."""

from __future__ import annotations

import json

import pytest

from elman.cli import main, task_of

RUN = ["--steps", "6", "--eval-every", "3", "--no-progress"]
WORDLM = [
    "--embedding",
    "8",
    "--hidden",
    "8",
    "--layers",
    "1",
    "--batch-size",
    "2",
    "--seq-len",
    "5",
    "--min-freq",
    "1",
    "--sample-length",
    "5",
    *RUN,
]
CLASSIFY = ["--hidden", "6", "--embedding", "6", "--batch-size", "4", *RUN]
TAG = [
    "--word-embedding",
    "6",
    "--char-embedding",
    "3",
    "--char-filters",
    "4",
    "--hidden",
    "6",
    "--min-freq",
    "1",
    "--batch-size",
    "2",
    *RUN,
]
SENTENCES = ["the cat sat on the mat", "a dog ran to the cat", "the mat was red"] * 6


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "train.txt").write_text("\n".join(SENTENCES) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(SENTENCES[:3]) + "\n")
    rows = [
        ("great film", "pos"),
        ("awful plot", "neg"),
        ("a great plot", "pos"),
        ("the awful film", "neg"),
    ] * 5
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    (tmp_path / "test.csv").write_text("text,label\nshort film,pos\ngreat,pos\n")
    tagged = "the\tat\ncat\tnn\nran\tvbd\n\na\tat\ndog\tnn\nsat\tvbd\n"
    (tmp_path / "train.tsv").write_text((tagged + "\n") * 5)
    (tmp_path / "valid.tsv").write_text(tagged)
    return tmp_path


def test_wordlm_train_generate_predict_evaluate_resume(files, capsys):
    out = files / "w"
    args = ["train", "wordlm", str(files / "train.txt"), "--test", str(files / "test.txt")]
    assert main([*args, "--out", str(out), *WORDLM]) == 0
    assert "perplexity" in capsys.readouterr().out and task_of(out) == "wordlm"
    assert main(["generate", str(out), "--prompt", "the cat", "--length", "4", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("the cat")
    assert main(["generate", str(out), "--prompt", "the cat", "--beam", "3", "--nbest", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 1 <= len(lines) <= 2 and all(line.split("\t")[1].startswith("the cat") for line in lines)
    (files / "prefixes.txt").write_text("the cat sat on\na dog\n")
    assert main(["predict", str(out), str(files / "prefixes.txt"), "--top-k", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["the cat sat on", "a dog"] and len(rows[0]["next"]) == 2
    assert main(["evaluate", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data"] == "test split" and result["perplexity"] > 1
    expl = ["explain", str(out), "the cat sat on a dog", "--out", str(files / "wx")]
    assert main([*expl, "--flow-steps", "5"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found["saliency"]["gradient_x_input"]) == 7  # <eos> and six words
    assert (files / "wx" / f"unit-{found['unit']}.html").read_text().count("<span") == 7
    assert main(["resume", str(out), "--steps", "8"]) == 0
    capsys.readouterr()
    pytest.importorskip("onnxruntime")  # last: without it the rest has run, and this skips
    assert main(["export", str(out)]) == 0
    assert max(json.loads(capsys.readouterr().out)["max_abs_diff"].values()) < 1e-4


def test_classify_train_predict_evaluate(files, capsys):
    out = files / "c"
    source = ["--train", str(files / "train.csv"), "--test", str(files / "test.csv")]
    assert main(["train", "classify", *source, "--out", str(out), *CLASSIFY]) == 0
    assert "accuracy" in capsys.readouterr().out
    (files / "in.txt").write_text("great film\nawful\n")
    assert main(["predict", str(out), str(files / "in.txt"), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "text,label,p_neg,p_pos" and len(lines) == 3
    assert lines[1].startswith("great film,")
    assert main(["evaluate", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    result = json.loads(printed[-1])
    assert result["examples"] == 2 and "|" in printed[0]
    assert sum(map(sum, result["confusion"])) == 2
    (files / "empty.txt").write_text("fine\n\n")
    assert main(["predict", str(out), str(files / "empty.txt")]) == 2
    assert "input line(s) [2] are empty" in capsys.readouterr().err
    (files / "odd.csv").write_text("text,label\nfine,meh\n")
    assert main(["evaluate", str(out), str(files / "odd.csv")]) == 2
    assert "never occur in training" in capsys.readouterr().err
    assert main(["train", "classify", "--out", str(files / "c2"), *CLASSIFY]) == 2
    assert "give exactly one data source" in capsys.readouterr().err
    bad = ["--train", str(files / "train.csv"), "--text-column", "sentence"]
    assert main(["train", "classify", *bad, "--out", str(files / "c3"), *CLASSIFY]) == 2
    assert "no column 'sentence'" in capsys.readouterr().err
    pytest.importorskip("onnxruntime")  # last: without it the rest has run, and this skips
    assert main(["export", str(out)]) == 0  # (x, lengths) -> logits, checked in ORT
    assert max(json.loads(capsys.readouterr().out)["max_abs_diff"].values()) < 1e-4


def test_tag_train_predict_evaluate(files, capsys):
    out = files / "t"
    data = ["--train", str(files / "train.tsv"), "--valid", str(files / "valid.tsv")]
    assert main(["train", "tag", *data, "--out", str(out), *TAG, "--no-crf"]) == 0
    capsys.readouterr()
    (files / "words.txt").write_text("the dog ran\n")
    assert main(["predict", str(out), str(files / "words.txt")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["words"] == ["the", "dog", "ran"] and len(row["tags"]) == 3
    assert main(["evaluate", str(out), str(files / "valid.tsv")]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == 6
    assert main(["generate", str(out)]) == 2
    assert "`elman generate` needs a charlm, wordlm or music model" in capsys.readouterr().err


def test_music_train_generate_evaluate_resume(tmp_path, capsys):
    pytest.importorskip("music21")
    pytest.importorskip("mido")
    out, cache = tmp_path / "m", tmp_path / "chorales.safetensors"
    tiny = ["--hidden", "8", "--batch-size", "2", "--steps", "3", "--eval-every", "3"]
    args = [
        "train",
        "music",
        "--chorales",
        "--limit",
        "5",
        "--cache",
        str(cache),
        "--out",
        str(out),
    ]
    assert main([*args, *tiny, "--no-progress"]) == 0
    assert "validation: loss" in capsys.readouterr().out
    midi = tmp_path / "s.mid"
    assert main(["generate", str(out), "--midi", str(midi), "--length", "6", "--seed", "1"]) == 0
    assert "8 primer + 6 generated steps" in capsys.readouterr().out and midi.stat().st_size > 0
    assert (
        main(["generate", str(out), "--midi", str(tmp_path / "p.mid"), "--primer-midi", str(midi)])
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["nll_per_step"] > 0
    assert main(["resume", str(out), "--steps", "4"]) == 0
    capsys.readouterr()
    empty = tmp_path / "empty.mid"
    from elman.data.midi import write_melody_midi

    write_melody_midi([(None, 1.0)], empty)
    assert main(["generate", str(out), "--primer-midi", str(empty)]) == 2
    assert "has no notes" in capsys.readouterr().err
    melody = [
        "train",
        "music",
        "--melodies",
        "--match",
        "nothing-like-this",
        "--out",
        str(tmp_path / "x"),
    ]
    assert main([*melody, *tiny]) == 2
    assert "match: no file" in capsys.readouterr().err
    pytest.importorskip("onnxruntime")  # last: without it the rest has run, and this skips
    assert main(["export", str(out)]) == 0  # frames in, a logit per pitch out
    assert max(json.loads(capsys.readouterr().out)["max_abs_diff"].values()) < 1e-4
