"""Atomic writes: success replaces the file, failure leaves it and no debris."""

from __future__ import annotations

import pytest

from elman.files import atomic_path


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
