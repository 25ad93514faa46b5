"""Atomic writes: success replaces the file, failure leaves it and no debris."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from elman.files import atomic_path, remove_stale_temporaries


def test_success_replaces_and_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "sub" / "out.png"
    with atomic_path(path) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == path.parent
        tmp.write_text("new")
    assert path.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["out.png"]


def test_written_files_follow_the_umask_and_keep_a_replaced_files_mode(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.png") as tmp:
            tmp.write_text("x")
        assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644  # not mkstemp's 0600
        (tmp_path / "b.png").write_text("old")
        os.chmod(tmp_path / "b.png", 0o640)
        with atomic_path(tmp_path / "b.png") as tmp:
            tmp.write_text("new")
        assert stat.S_IMODE((tmp_path / "b.png").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_errors_name_the_users_path_not_a_temporary_file(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(IsADirectoryError) as caught, atomic_path(tmp_path / "d.png"):
        pass
    assert caught.value.filename == str(tmp_path / "d.png")


def test_an_unwritable_folder_is_named_by_the_users_path(tmp_path, monkeypatch):
    def refused(prefix, suffix, dir):  # what mkstemp raises where the folder is read-only
        raise PermissionError(13, "Permission denied", f"{dir}/{prefix}x1y2{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as caught, atomic_path(tmp_path / "f.png"):
        pass
    assert caught.value.filename == str(tmp_path / "f.png")


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    path = tmp_path / "last.safetensors"
    path.write_text("kept")
    stale = tmp_path / ".last.safetensors.abc123.tmp.safetensors"
    stale.write_text("debris")
    other = tmp_path / ".best.safetensors.x.tmp.safetensors"
    other.write_text("another file's")
    assert remove_stale_temporaries(path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, other.name])
