"""seq2seq tokenization: whitespace tokens on character-level texts are refused, and the
error rates are named for the run's target tokens."""

from __future__ import annotations

import json

import pytest

from elman.cli import main
from elman.tasks.seq2seq import task as s2s

TINY = ["--embedding", "4", "--hidden", "4", "--batch-size", "8", "--max-target", "12"]
RUN = ["--steps", "4", "--eval-every", "2", "--no-progress"]
# dates to a compact code: every target one whitespace token of its own
DATES = [(f"{d} march 20{y:02d}", f"20{y:02d}03{d:02d}") for d in range(1, 9) for y in range(5)]


@pytest.fixture()
def dates(tmp_path):
    path = tmp_path / "dates.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in DATES))
    return path


def refused(capsys, argv: list[str], *parts: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("elman: error: ") and err.count("\n") == 1 and "Traceback" not in err
    for part in parts:
        assert part in err, (part, err)


def test_whitespace_targets_of_one_token_each_are_refused(dates, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "seq2seq", "--pairs", str(dates), "--out", str(out), *TINY, *RUN]
    refused(
        capsys,
        argv,
        "--target-tokens whitespace",
        "100% of the 38 training targets",
        "--target-tokens char",
    )
    assert not out.exists()
    swapped = tmp_path / "swapped.tsv"
    swapped.write_text("".join(f"{t}\t{s}\n" for s, t in DATES))
    argv = ["train", "seq2seq", "--pairs", str(swapped), "--out", str(out), *TINY, *RUN]
    refused(capsys, [*argv, "--source-tokens", "whitespace"], "--source-tokens char")


def test_char_targets_report_sequence_and_char_error_rates(dates, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "seq2seq", "--pairs", str(dates), "--out", str(out), *TINY, *RUN]
    assert main([*argv, "--target-tokens", "char"]) == 0
    assert "sequence_error_rate" in capsys.readouterr().out
    assert main(["evaluate", str(out), str(dates)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"sequence_error_rate", "char_error_rate", "sequences", "data"}
    assert result["sequences"] == 40 and result["char_error_rate"] >= 0
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("val_char_error_rate" in row for row in logged)
    assert not any("val_wer" in row for row in logged)


def test_check_tokens_leaves_word_targets_alone():
    words = [f"{w} {v}" for w in "abcdefghij" for v in ("x", "y", "z")]  # 30 two-token texts
    s2s.check_tokens(words, "whitespace", "target")
    labels = ["yes", "no"] * 20  # one token each, but a small vocabulary: a label set
    s2s.check_tokens(labels, "whitespace", "target")
    s2s.check_tokens([str(i) for i in range(10)], "whitespace", "target")  # too few to judge
    with pytest.raises(ValueError, match="--target-tokens char"):
        s2s.check_tokens([str(i) for i in range(40)], "whitespace", "target")
    assert s2s.metric_names(s2s.Seq2SeqConfig()) == ("wer", "per", "words")
