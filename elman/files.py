"""Writing files so that a failed run never leaves a half-written file where the user
expects one, nor corrupts the one already there."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write to (same suffix, so writers that read the
    format from it still can); it replaces ``path`` when the block succeeds and is removed
    when it fails. The result has the mode a plain ``open`` would give it (the replaced
    file's, or 0666 less the umask), not the temporary file's 0600; errors name ``path``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory, expected a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
    except OSError as e:  # unwritable folder, disk full: say which file could not be written
        raise type(e)(e.errno, e.strerror, str(path)) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove what ``atomic_path(path)`` writes and a killed process left behind."""
    path = Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp{path.suffix}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def output_dir(path: str | Path, option: str) -> Path:
    """``path`` as a Path for a directory the command writes into; an error naming
    ``option`` if something other than a directory is there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a file; expected a directory")
    return path


def output_file(path: str | Path, option: str, overwrite: bool = True) -> Path:
    """``path`` as a Path for a file the command writes; an error naming ``option`` if it is
    a directory, or if it exists and ``overwrite`` is off."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a directory; expected a file name")
    if path.exists() and not overwrite:
        raise ValueError(f"{option} {str(path)!r} already exists; pass --overwrite to replace it")
    return path
