"""Checkpoint files: round trip, atomic replacement, truncation and foreign files."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from elman.train import checkpoint as ckpt
from elman.train.checkpoint import CheckpointError


def test_round_trip(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"a": torch.arange(6.0).view(2, 3)[:, ::2]}, {"task": "t", "x": [1]})
    tensors, meta = ckpt.load_checkpoint(path, "t")
    assert torch.equal(tensors["a"], torch.tensor([[0.0, 2.0], [3.0, 5.0]]))
    assert meta["x"] == [1] and meta["format"] == ckpt.FORMAT


def test_tied_weights_are_saved_and_load_back_tied(tmp_path):
    embed = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5)
    head.weight = embed.weight  # tied input and output embeddings share one tensor
    model = torch.nn.ModuleDict({"embed": embed, "head": head})
    path = ckpt.save_checkpoint(tmp_path / "t.safetensors", model.state_dict(), {"task": "t"})
    fresh = torch.nn.ModuleDict({"embed": torch.nn.Embedding(5, 3), "head": torch.nn.Linear(3, 5)})
    fresh["head"].weight = fresh["embed"].weight
    fresh.load_state_dict(ckpt.load_checkpoint(path)[0])
    assert torch.equal(fresh["head"].weight, embed.weight)
    assert fresh["head"].weight is fresh["embed"].weight


def test_crash_between_write_and_rename_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"a": torch.zeros(3)}, {"task": "t"})
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        ckpt.save_checkpoint(path, {"a": torch.ones(3)}, {"task": "t"})
    assert path.read_bytes() == before
    assert torch.equal(ckpt.load_checkpoint(path)[0]["a"], torch.zeros(3))
    assert os.listdir(tmp_path) == ["c.safetensors"]  # no temp file left behind


def test_truncated_foreign_and_wrong_task_files(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"a": torch.zeros(100)}, {"task": "charlm"})
    with pytest.raises(CheckpointError, match="is for task 'charlm', expected 'tagger'"):
        ckpt.read_meta(path, "tagger")
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match="truncated"):
        ckpt.load_checkpoint(path)
    other = tmp_path / "o.bin"
    other.write_bytes(b"\x80\x04K\x01.")  # a pickle is not a checkpoint
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        ckpt.read_meta(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.read_meta(tmp_path / "missing.safetensors")


def _with_header(path, header: str) -> None:
    """Rewrite ``path``'s safetensors header with Elman metadata ``header`` (tampering)."""
    tensors = ckpt.load_file(str(path))
    ckpt.save_file(tensors, str(path), metadata={"elman": header})


@pytest.mark.parametrize(
    "header, message",
    [
        ("[1, 2]", "a JSON list, expected an object"),
        ('"text"', "a JSON str, expected an object"),
        ("{not json", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
)
def test_a_tampered_header_is_one_error_naming_the_file(tmp_path, header, message):
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", {"a": torch.zeros(2)}, {"task": "t"})
    _with_header(path, header)
    with pytest.raises(CheckpointError, match=message) as caught:
        ckpt.read_meta(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "error",
    [
        KeyError("model"),
        TypeError("Config.__init__() got an unexpected keyword argument 'x'"),
        RuntimeError("size mismatch for weight: copying a param with shape [3]"),
        SyntaxError("too many nested parentheses"),
    ],
)
def test_reading_turns_what_a_header_breaks_into_a_checkpoint_error(tmp_path, error):
    with (
        pytest.raises(CheckpointError, match=r"c\.safetensors") as caught,
        ckpt.reading(tmp_path / "c.safetensors"),
    ):
        raise error
    assert caught.value.__cause__ is error


def test_a_full_disk_is_an_os_error_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", {"a": torch.zeros(3)}, {"task": "t"})
    before = path.read_bytes()

    def full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise ckpt.SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )

    monkeypatch.setattr(ckpt, "save_file", full)
    with pytest.raises(OSError) as caught:
        ckpt.save_checkpoint(path, {"a": torch.ones(3)}, {"task": "t"})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.safetensors"]
