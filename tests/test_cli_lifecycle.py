"""A run's life through the CLI when things go wrong: a full disk, a file where the run
directory should be, a tampered checkpoint, and a resume to a new total."""

from __future__ import annotations

import json

import pytest
import torch

from elman.cli import main
from elman.train import checkpoint as ckpt
from tests.test_cli import TINY

LOG_EVERY = ["--log-every", "1"]


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("ROMEO:\nTo be, or not to be, that is the question.\n" * 60, encoding="utf-8")
    return path


def test_a_full_disk_is_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path, text, capsys, monkeypatch
):
    out = tmp_path / "run"
    assert main(["train", "charlm", str(text), "--out", str(out), *TINY]) == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.safetensors")}
    real = ckpt.save_file

    def full(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)  # a partial file, then the disk is full
        raise ckpt.SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )

    monkeypatch.setattr(ckpt, "save_file", full)
    capsys.readouterr()
    assert main(["resume", str(out), "--steps", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("elman: error: the disk is full") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and ".safetensors" in err
    assert {p.name: p.read_bytes() for p in out.glob("*.safetensors")} == before
    assert not list(out.glob(".*.tmp.*"))


def test_out_that_is_a_file_is_refused(tmp_path, text, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["train", "charlm", str(text), "--out", str(target), *TINY]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file; expected a directory" in err
    assert target.read_text() == "mine"


@pytest.mark.parametrize(
    "header",
    ["[1]", "{broken", None],  # None: a config that disagrees with the tensors
)
@pytest.mark.parametrize(
    "command", [["resume", "--steps", "9"], ["generate", "--length", "5"], ["evaluate"]]
)
def test_a_tampered_checkpoint_is_one_line_naming_the_file(tmp_path, text, capsys, header, command):
    out = tmp_path / "run"
    assert main(["train", "charlm", str(text), "--out", str(out), *TINY]) == 0
    for name in ("best", "last"):
        path = out / f"{name}.safetensors"
        tensors, meta = ckpt.load_checkpoint(path)
        if header is None:
            meta["task_config"]["model"]["hidden"] = 7
            header_text = json.dumps(meta)
        else:
            header_text = header
        ckpt.save_file(tensors, str(path), metadata={"elman": header_text})
    capsys.readouterr()
    assert main([command[0], str(out), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("elman: error: ") and "Traceback" not in err
    assert ".safetensors" in err and len(err.strip().splitlines()) == 1


def test_a_resume_to_a_new_total_goes_on_at_the_schedules_rate(tmp_path, text, capsys):
    out = tmp_path / "run"
    args = ["--lr", "0.01", "--min-lr", "0.1", "--warmup", "0", *LOG_EVERY]
    assert main(["train", "charlm", str(text), "--out", str(out), *TINY, *args]) == 0
    assert main(["resume", str(out), "--steps", "9"]) == 0
    rates = {
        r["step"]: r["lr"]
        for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
        if "lr" in r
    }
    assert sorted(rates) == list(range(1, 10))
    assert rates[7] == rates[8] == rates[9] == pytest.approx(0.001)  # no jump back up
    assert rates[6] == pytest.approx(0.001)


@pytest.mark.parametrize(
    "field, value, command",
    [
        ("rng_python", "(" * 100_000, ["resume", "--steps", "9"]),
        ("task", "nonsense", ["evaluate"]),
        ("task", ["charlm"], ["resume", "--steps", "9"]),
        (
            "task",
            "forecast",
            ["resume", "--steps", "9"],
        ),  # another task's name over a char-LM's config
        ("train", [1, 2], ["resume", "--steps", "9"]),
    ],
)
def test_a_tampered_field_is_one_line_naming_the_file(
    tmp_path, text, capsys, field, value, command
):
    out = tmp_path / "run"
    assert main(["train", "charlm", str(text), "--out", str(out), *TINY]) == 0
    for name in ("best", "last"):
        path = out / f"{name}.safetensors"
        tensors, meta = ckpt.load_checkpoint(path)
        meta[field] = value
        ckpt.save_file(tensors, str(path), metadata={"elman": json.dumps(meta)})
    capsys.readouterr()
    assert main([command[0], str(out), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("elman: error: ") and "Traceback" not in err
    assert ".safetensors" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--hidden", "1180591620717411303424", "out of range (at most 2**63 - 1)"),
        ("--lr", "1e308", "not a finite number within float32's range"),
        ("--lr", "nan", "not a finite number within float32's range"),
        ("--steps", "ten", "expected an integer, got 'ten'"),
    ],
)
def test_numbers_past_what_torch_takes_are_refused_by_the_parser(
    tmp_path, text, capsys, option, value, message
):
    with pytest.raises(SystemExit) as exited:
        main(["train", "charlm", str(text), "--out", str(tmp_path / "r"), *TINY, option, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_layers_that_cannot_fit_and_failed_allocations_are_one_line(
    tmp_path, text, capsys, monkeypatch
):
    out = tmp_path / "r"
    argv = ["train", "charlm", str(text), "--out", str(out), *TINY]
    assert main([*argv, "--layers", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert "more than this machine's" in err and len(err.strip().splitlines()) == 1

    def refused(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 240000000000 bytes. Error code 12 (Cannot allocate "
            "memory)"
        )

    monkeypatch.setattr(torch.nn.Embedding, "__init__", refused)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("elman: error: not enough memory (224 GiB at once)")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
