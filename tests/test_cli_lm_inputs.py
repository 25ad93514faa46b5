"""Language-model, music, explain and export commands: bad input is refused with one clear
line (exit 2, nothing overwritten) and every option does what it says."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from elman.cli import main
from elman.data.text import bundled_corpus_path, read_text
from elman.tasks.registry import load_run
from elman.train.checkpoint import read_meta
from tests.fixtures.legacy.record import HERE as LEGACY_ROOT
from tests.helpers import refused

LEGACY = LEGACY_ROOT / "runs"

CHARLM = [
    *("--cell", "gru", "--embedding", "8", "--hidden", "16", "--layers", "1"),
    *("--batch-size", "4", "--seq-len", "16", "--steps", "6", "--eval-every", "3"),
    *("--no-progress", "--sample-length", "0"),
]
WORDLM = [
    *("--embedding", "8", "--hidden", "8", "--layers", "1", "--batch-size", "2"),
    *("--seq-len", "5", "--min-freq", "1", "--sample-length", "0"),
    *("--steps", "4", "--eval-every", "2", "--no-progress"),
]
MELODY = [
    *("--melodies", "--match", "test1", "--hidden", "8", "--embedding", "8"),
    *("--batch-size", "4", "--steps", "2", "--eval-every", "2", "--no-progress"),
]
SENTENCES = ["the cat sat on the mat", "a dog ran to the cat", "the mat was red"] * 6


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny charlm, wordlm (no test file) and melody runs, trained once."""
    root = tmp_path_factory.mktemp("lm-inputs")
    text = root / "t.txt"
    text.write_text(read_text(bundled_corpus_path())[:5000], encoding="utf-8")
    (root / "w.txt").write_text("\n".join(SENTENCES) + "\n")
    assert main(["train", "charlm", str(text), "--out", str(root / "charlm"), *CHARLM]) == 0
    assert (
        main(["train", "wordlm", str(root / "w.txt"), "--out", str(root / "wordlm"), *WORDLM]) == 0
    )
    if all(importlib.util.find_spec(m) for m in ("music21", "mido")):
        assert main(["train", "music", "--out", str(root / "melody"), *MELODY]) == 0
    return root


@pytest.fixture()
def run(runs, tmp_path, request):
    """A fresh copy of the run named by the test's ``task`` parameter."""
    task = request.param
    if not (runs / task).exists():
        pytest.skip(f"the {task} run needs music21 and mido")
    shutil.copytree(runs / task, tmp_path / task)
    return tmp_path / task


def checkpoint_bytes(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.glob("*.safetensors")}


# ---- 1. resume with nothing left to train ------------------------------------------------
@pytest.mark.parametrize("run", ["charlm", "melody"], indirect=True)
@pytest.mark.parametrize("below", [None, 0, 1])
def test_resume_with_nothing_to_train_says_so_and_changes_nothing(run, below, capsys):
    capsys.readouterr()
    before = checkpoint_bytes(run)
    done = read_meta(run / "last.safetensors")["position"]["step"]
    steps = [] if below is None else ["--steps", str(done - below)]
    assert main(["resume", str(run), *steps]) == 0  # the run is already where it was asked
    out, err = capsys.readouterr()
    assert out == (
        f"nothing to do: the run is at step {done} (of {done}); pass --steps M with "
        f"M > {done} to train further\n"
    )
    assert "Traceback" not in err and checkpoint_bytes(run) == before


def test_a_run_that_trained_no_step_says_so(runs, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["train", "charlm", str(runs / "t.txt"), "--out", str(out), *CHARLM]
    refused(capsys, [*args, "--time-limit", "1e-9"], "no step was trained", "--time-limit")
    assert not (out / "last.safetensors").exists()


# ---- 2. explain bounds the text ----------------------------------------------------------
@pytest.mark.parametrize("run", ["charlm"], indirect=True)
def test_explain_refuses_a_text_longer_than_max_length(run, tmp_path, capsys):
    long = "the king " * 200  # 1800 characters
    args = ["explain", str(run), long, "--out", str(tmp_path / "e")]
    refused(capsys, args, "text: 1800 characters", "--max-length 1000", "raise --max-length")
    assert not (tmp_path / "e").exists()
    refused(capsys, ["explain", str(run), "KING: go on", "--max-length", "5"], "11 characters")
    refused(capsys, ["explain", str(run), "KING", "--max-length", "1"], "--max-length", "got 1")
    ok = ["explain", str(run), "KING: go on", "--max-length", "11", "--flow-steps", "5"]
    assert main([*ok, "--out", str(tmp_path / "e")]) == 0
    assert json.loads(capsys.readouterr().out)["files"]


# ---- 3. output paths ---------------------------------------------------------------------
@pytest.mark.parametrize("run", ["charlm"], indirect=True)
def test_explain_out_must_be_a_folder_and_png_a_file(run, tmp_path, capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    refused(capsys, ["explain", str(run), "KING", "--out", str(mine)], "--out", "is a file")
    assert mine.read_text() == "mine"
    s2s = LEGACY / "seq2seq"  # a seq2seq run (nothing is written: --png is refused)
    refused(capsys, ["explain", str(s2s), "abc", "--png", str(tmp_path)], "--png", "directory")


@pytest.mark.parametrize("run", ["charlm"], indirect=True)
def test_export_out_refuses_a_folder_and_replaces_a_file_only_with_overwrite(run, tmp_path, capsys):
    refused(capsys, ["export", str(run), "--out", str(tmp_path)], "--out", "is a directory")
    mine = tmp_path / "model.onnx"
    mine.write_text("mine")
    refused(capsys, ["export", str(run), "--out", str(mine)], "already exists", "--overwrite")
    assert mine.read_text() == "mine"
    pytest.importorskip("onnxruntime")
    assert main(["export", str(run), "--out", str(mine), "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["onnx"] == str(mine)
    assert mine.read_bytes() != b"mine"
    assert main(["export", str(run)]) == 0  # the default file in the run is the export's own
    assert main(["export", str(run)]) == 0


# ---- 4, 5, 6, 8. music --------------------------------------------------------------------
@pytest.mark.parametrize("run", ["melody"], indirect=True)
def test_melody_generation_writes_length_notes(run, tmp_path, capsys):
    from elman.data.midi import read_midi_spans
    from elman.tasks.music import sampling

    midi = tmp_path / "x.mid"
    assert main(["generate", str(run), "--length", "64", "--seed", "1", "--midi", str(midi)]) == 0
    assert capsys.readouterr().out == f"{midi}: 8 primer + 64 generated steps\n"
    assert len(read_midi_spans(midi)[0]) > 8  # notes beyond the primer's
    loaded = load_run(run)
    model, encoding, meta = loaded.model, loaded.encoding, loaded.meta
    primer = sampling.primer_from(meta, 0, 2)
    for seed in range(5):
        piece = sampling.generate(model, encoding, primer, 64, seed=seed)
        assert len(piece) == 2 + 64 and int(piece[2:].min()) >= sampling.NOTES  # no <s>/<unk>
    greedy = sampling.generate(model, encoding, primer, 20, temperature=0)
    assert len(greedy) == 22


@pytest.mark.parametrize("run", ["melody"], indirect=True)
def test_music_generate_refuses_bad_options(run, tmp_path, capsys):
    g = ["generate", str(run)]
    refused(capsys, [*g, "--midi", str(tmp_path)], "--midi", "is a directory")
    for length in ("0", "-1"):
        refused(capsys, [*g, "--length", length], "--length: expected a positive number of steps")
    for option, value in [
        ("--prompt", "x"),
        ("--top-k", "3"),
        ("--top-p", "0.5"),
        ("--unknown", "skip"),
        ("--nbest", "2"),
    ]:
        refused(capsys, [*g, option, value], option, "holds a music model")
    refused(capsys, [*g, "--prompt", "x"], "--prompt is for charlm and wordlm models")
    assert not (run / "sample.mid").exists()


def test_train_music_refuses_a_cache_that_is_not_one(tmp_path, capsys):
    mine = tmp_path / "mine.safetensors"
    mine.write_text("my notes, not a roll cache\n")
    args = ["train", "music", "--chorales", "--hidden", "4", "--no-progress"]
    refused(
        capsys,
        [*args, "--out", str(tmp_path / "r"), "--cache", str(mine)],
        "cache:",
        str(mine),
        "is not a roll cache",
    )
    assert mine.read_text() == "my notes, not a roll cache\n"
    refused(capsys, [*args, "--out", str(tmp_path / "r"), "--cache", str(tmp_path)], "--cache")


@pytest.mark.parametrize("run", ["charlm", "wordlm"], indirect=True)
def test_language_model_generate_refuses_bad_options(run, tmp_path, capsys):
    task = run.name
    unit = "characters" if task == "charlm" else "words"
    for length in ("0", "-1"):
        refused(capsys, ["generate", str(run), "--length", length], f"positive number of {unit}")
    assert main(["generate", str(run), "--length", "3", "--seed", "1"]) == 0
    capsys.readouterr()
    for option, value in [
        ("--midi", str(tmp_path / "x.mid")),
        ("--primer-steps", "8"),
        ("--primer-piece", "0"),
        ("--primer-midi", str(tmp_path / "p.mid")),
        *([("--unknown", "skip")] if task == "wordlm" else []),
    ]:
        err = refused(capsys, ["generate", str(run), option, value], f"{option} is for ")
        assert re.search(f"{option} is for .* models; .* holds a {task}", err), err
    refused(capsys, ["generate", str(run), "--nbest", "2"], "--nbest")
    assert not (tmp_path / "x.mid").exists()
    assert main(["generate", str(run), "--length", "3"]) == 0
    assert capsys.readouterr().out


# ---- 7. evaluate a word model without a test file ---------------------------------------
@pytest.mark.parametrize("run", ["wordlm"], indirect=True)
def test_evaluate_a_word_model_without_a_test_file_scores_its_held_out_split(run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["data"] == "valid split (the run has no test split)" and found["perplexity"] > 1
    assert main(["evaluate", str(run), "--split", "valid"]) == 0
    assert json.loads(capsys.readouterr().out)["data"] == "valid split"


# ---- 9. tampered checkpoint headers -----------------------------------------------------
def _edit(change):
    """A header rewrite that edits the decoded JSON with ``change(meta)``."""

    def rewrite(raw: str, which: str) -> str:
        meta = json.loads(raw)
        change(meta, which)
        return json.dumps(meta)

    return rewrite


def _wider(meta: dict, which: str) -> None:
    meta["task_config"]["model"]["hidden"] *= 2  # the tensors stay the old size


def _no_vocab(meta: dict, which: str) -> None:
    for key in ("vocab", "tokenizer"):
        meta["task_config"].pop(key, None)


def _nested_rng(meta: dict, which: str) -> None:
    meta["rng_python"] = "(" * 100_000


def _nested_position(meta: dict, which: str) -> None:
    meta["position"] = [[[[1]]]]


TAMPERINGS = {
    "json-list": lambda raw, which: "[1, 2, 3]",
    "json-string": lambda raw, which: json.dumps("elman"),
    "not-json": lambda raw, which: raw[: len(raw) // 2],
    "deep-json": lambda raw, which: "[" * 100_000 + "]" * 100_000,
    "config-vs-tensors": _edit(_wider),
    "missing-vocab": _edit(_no_vocab),
    "nested-rng": _edit(_nested_rng),
    "odd-position": _edit(_nested_position),
}
ONLY_LAST = ("nested-rng", "odd-position")
COMMANDS = {
    "generate": lambda run: ["generate", str(run), "--length", "3"],
    "evaluate": lambda run: ["evaluate", str(run)],
    "resume": lambda run: ["resume", str(run), "--steps", "50"],
    "export": lambda run: ["export", str(run), "--out", str(run / "m.onnx")],
    "explain": lambda run: ["explain", str(run), "the cat", "--out", str(run / "e")],
}


def tamper(path: Path, how: str) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as f:
        raw = f.metadata()["elman"]
    tensors = load_file(str(path))
    save_file(tensors, str(path), {"elman": TAMPERINGS[how](raw, path.stem)})


CASES = [
    (how, command, task)
    for how in TAMPERINGS
    for command in COMMANDS
    for task in ("charlm", "wordlm", "melody")
    if (how not in ONLY_LAST or command == "resume")  # fields that only resume reads
    and (command != "explain" or task != "melody")  # explain reads language models
]


@pytest.mark.parametrize(("how", "command", "run"), CASES, indirect=["run"])
def test_a_tampered_header_is_one_error_line_naming_the_file(how, command, run, capsys):
    for path in run.glob("*.safetensors"):
        tamper(path, how)
    before = checkpoint_bytes(run)
    err = refused(capsys, COMMANDS[command](run), f"{run}/")
    assert "best.safetensors" in err or "last.safetensors" in err
    assert checkpoint_bytes(run) == before
