"""Bad inputs to predict, evaluate, translate and train for the labelling tasks (classify,
tag, word LM predictions, seq2seq): one `elman: error:` line each, and flat CSV outputs."""

from __future__ import annotations

import csv
import io
import json
import struct

import pytest

from elman.cli import main
from tests.helpers import refused

RUN = ["--steps", "4", "--eval-every", "2", "--no-progress"]
CLASSIFY = ["--hidden", "4", "--embedding", "4", "--batch-size", "4", *RUN]
TAG = ["--word-embedding", "4", "--char-filters", "0", "--hidden", "4", "--min-freq", "1", *RUN]
WORDLM = ["--embedding", "4", "--hidden", "4", "--seq-len", "4", "--batch-size", "2", *RUN]
S2S = ["--embedding", "4", "--hidden", "4", "--batch-size", "4", "--max-target", "8", *RUN]
PAIRS = [("cat", "K AE T"), ("act", "AE K T"), ("tack", "T AE K"), ("at", "AE T")] * 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per task, shared by the tests (none of them changes a run)."""
    d = tmp_path_factory.mktemp("runs")
    rows = [("great film", "pos"), ("awful plot", "neg"), ("a great plot", "pos")] * 4
    (d / "train.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    tagged = "the\tat\ncat\tnn\nran\tvbd\n\na\tat\ndog\tnn\nsat\tvbd\n"
    (d / "train.tsv").write_text((tagged + "\n") * 3)
    (d / "valid.tsv").write_text(tagged)
    (d / "text.txt").write_text("the cat sat on the mat\na dog ran to the cat\n" * 6)
    (d / "pairs.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS))
    commands = {
        "c": ["classify", "--train", str(d / "train.csv"), *CLASSIFY],
        "t": ["tag", "--train", str(d / "train.tsv"), "--valid", str(d / "valid.tsv"), *TAG],
        "w": ["wordlm", str(d / "text.txt"), "--min-freq", "1", *WORDLM],
        "s": ["seq2seq", "--pairs", str(d / "pairs.tsv"), *S2S],
    }
    for name, args in commands.items():
        assert main(["train", *args, "--out", str(d / name)]) == 0
    return d


@pytest.mark.parametrize("run", ["c", "t", "w"])
def test_predict_refuses_a_directory_as_input(runs, capsys, run):
    refused(capsys, ["predict", str(runs / run), str(runs)], repr(str(runs)), "is a directory")


def test_translate_refuses_a_directory_and_an_empty_file(runs, capsys):
    refused(capsys, ["translate", str(runs / "s"), str(runs)], repr(str(runs)), "is a directory")
    empty = runs / "empty.txt"
    empty.write_text("")
    refused(capsys, ["translate", str(runs / "s"), str(empty)], "empty.txt", "at least one line")
    latin = runs / "latin.txt"
    latin.write_bytes(b"cat\ncaf\xe9\n")
    refused(capsys, ["translate", str(runs / "s"), str(latin)], "latin.txt line 2", "not UTF-8")
    table = runs / "dir.csv"
    table.mkdir()
    refused(capsys, ["predict", str(runs / "c"), str(table)], repr(str(table)), "is a directory")


@pytest.mark.parametrize("run", ["c", "t", "w"])
def test_predict_bounds_the_length_of_a_line(runs, capsys, run):
    long = runs / f"long-{run}.txt"
    long.write_text("the cat\n" + "cat " * 25_001 + "\n")  # 100,004 characters on line 2
    refused(capsys, ["predict", str(runs / run), str(long)], "line 2", "100004", "--max-chars")
    assert main(["predict", str(runs / run), str(long), "--max-chars", "200000"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_translate_and_csv_inputs_are_bounded_too(runs, capsys):
    words = runs / "words.txt"
    words.write_text("cat\ntackatack\n")
    argv = ["translate", str(runs / "s"), str(words), "--max-chars", "5"]
    refused(capsys, argv, "words.txt line 2", "9 characters", "--max-chars 5")
    table = runs / "in.csv"
    table.write_text("text\ngreat\n" + "x" * 30 + "\n")
    argv = ["predict", str(runs / "c"), str(table), "--max-chars", "20"]
    refused(capsys, argv, "in.csv line 3", "--max-chars 20")


def test_train_classify_refuses_a_field_past_the_bound(runs, capsys):
    table = runs / "huge.csv"
    table.write_text("text,label\ngood,pos\n" + "bad " * 40_000 + ",neg\n")  # 160,000 chars
    out = runs / "huge-run"
    argv = ["train", "classify", "--train", str(table), "--out", str(out), *CLASSIFY]
    refused(capsys, argv, "huge.csv line 3", "longer than --max-chars 100000")
    assert not out.exists()


def test_evaluate_refuses_a_tag_file_without_tabs(runs, capsys):
    slashed = runs / "slashed.txt"
    slashed.write_text("the/at cat/nn\nran/vbd ./.\n")  # two "columns" per line, no tab
    argv = ["evaluate", str(runs / "t"), str(slashed)]
    refused(capsys, argv, "slashed.txt line 1", "expected 'word<TAB>tag'", "'the/at cat/nn'")
    assert main(["evaluate", str(runs / "t"), str(runs / "valid.tsv")]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == 6


def test_train_seq2seq_refuses_a_third_column(runs, capsys):
    three = runs / "three.tsv"
    three.write_text("cat\tK AE T\n" + "act\tAE K T\tnoun\n")
    argv = ["train", "seq2seq", "--pairs", str(three), "--out", str(runs / "x3"), *S2S]
    refused(capsys, argv, "three.tsv line 2", "2 tab-separated columns", "got 3")


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_predict_csv_is_flat(runs, capsys):
    lines = runs / "lines.txt"
    lines.write_text("great film\nthe cat\n")
    assert main(["predict", str(runs / "c"), str(lines), "--format", "csv"]) == 0
    rows = csv_rows(capsys.readouterr().out)
    assert list(rows[0]) == ["text", "label", "p_neg", "p_pos"]
    assert rows[0]["text"] == "great film" and rows[0]["label"] in ("neg", "pos")
    assert abs(float(rows[0]["p_neg"]) + float(rows[0]["p_pos"]) - 1) < 1e-5
    assert main(["predict", str(runs / "t"), str(lines), "--format", "csv"]) == 0
    rows = csv_rows(capsys.readouterr().out)
    assert list(rows[1]) == ["text", "tags"] and rows[1]["text"] == "the cat"
    assert len(rows[1]["tags"].split()) == 2
    argv = ["predict", str(runs / "w"), str(lines), "--format", "csv", "--top-k", "2"]
    assert main(argv) == 0
    rows = csv_rows(capsys.readouterr().out)
    assert list(rows[0]) == ["text", "next_1", "p_1", "next_2", "p_2"]
    assert float(rows[0]["p_1"]) >= float(rows[0]["p_2"])


def rewrite_meta(path, change) -> None:
    """Rewrite the JSON header of the checkpoint at ``path`` with ``change(meta)``."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["elman"] = change(json.loads(header["__metadata__"]["elman"]))
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


TAMPERED = {
    "model": lambda m: json.dumps(m | {"task_config": m["task_config"] | {"model": [1]}}),
    "source": lambda m: json.dumps(m | {"task_config": m["task_config"] | {"source": 7}}),
    "list": lambda m: "[1, 2]",
}


@pytest.mark.parametrize("how", list(TAMPERED))
@pytest.mark.parametrize("run", ["c", "t", "s"])
def test_tampered_headers_are_one_error_naming_the_file(runs, tmp_path, capsys, run, how):
    import shutil

    copy = tmp_path / run
    shutil.copytree(runs / run, copy)
    for name in ("best", "last"):
        rewrite_meta(copy / f"{name}.safetensors", TAMPERED[how])
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    inputs = runs / "lines-tampered.txt"
    inputs.write_text("the cat\n")
    use = "translate" if run == "s" else "predict"
    commands = [["evaluate", str(copy)], ["resume", str(copy), "--steps", "6"]]
    if how != "source":  # predicting needs no data source
        commands.append([use, str(copy), str(inputs)])
    for argv in commands:
        refused(capsys, argv, "checkpoint", str(copy))
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "{t}", "{lines}", "--top-k", "3"], "--top-k is for wordlm models"),
        (["evaluate", "{w}", "--beam", "3"], "--beam is for seq2seq and asr models"),
        (["evaluate", "{c}", "--split", "valid"], "--split is for wordlm and tag and"),
        (
            ["explain", "{w}", "the cat", "--png", "{tmp}/a.png"],
            "--png is for seq2seq and asr models",
        ),
    ],
)
def test_options_a_model_would_not_read_are_refused(runs, tmp_path, capsys, argv, message):
    lines = tmp_path / "lines.txt"
    lines.write_text("the cat sat\n")
    names = {"t": runs / "t", "w": runs / "w", "c": runs / "c", "lines": lines, "tmp": tmp_path}
    refused(capsys, [a.format(**names) for a in argv], message)
    assert not (tmp_path / "a.png").exists()
