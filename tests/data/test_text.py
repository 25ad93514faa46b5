"""Text loading: the bundled corpus, and clear errors for files that are not UTF-8 text."""

from __future__ import annotations

import pytest

from elman.data.text import bundled_corpus_path, read_text, split_by_position
from elman.data.vocab import CharVocab


def test_bundled_corpus_is_the_documented_text():
    text = read_text(bundled_corpus_path())
    assert len(text) == 1_036_467
    assert len(set(text)) == 76
    assert text.startswith("HAMLET, PRINCE OF DENMARK")


def test_split_by_position_holds_out_the_tail():
    train, valid = split_by_position("abcdefghij", 0.2)
    assert (train, valid) == ("abcdefgh", "ij")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"abc\x00def", "looks binary"),
        ("café".encode("latin-1"), r"is not valid UTF-8 \(byte 0xe9 at offset 3\)"),
    ],
)
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_text(path)


def test_missing_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="not a regular file"):
        read_text(tmp_path)


def test_vocab_round_trip_and_unknown_characters():
    vocab = CharVocab.from_text("hello world")
    ids = vocab.encode("hello")
    assert vocab.decode(ids) == "hello"
    assert CharVocab.from_json(vocab.to_json()) == vocab
    with pytest.raises(ValueError, match=r"1 character\(s\) the vocabulary lacks: 'é' \(U\+00E9\)"):
        vocab.encode("hé")
    assert vocab.decode(vocab.encode("hé", unknown="skip")) == "h"
    with pytest.raises(ValueError, match="unknown must be one of"):
        vocab.encode("h", unknown="replace")
