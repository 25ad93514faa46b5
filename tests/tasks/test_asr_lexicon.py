"""The lexicon the CTC beam search may spell from: read from a word list or a CMUdict file,
a penalty once per word that leaves it, and a decode it turns from a non-word to a word."""

from __future__ import annotations

import pytest
import torch

from elman.tasks.asr.alphabet import Alphabet
from elman.tasks.asr.decoding import Decoding
from elman.tasks.asr.lexicon import Lexicon, LexiconScorer

ALPHABET = Alphabet()


def _ids(text: str) -> list[int]:
    return ALPHABET.encode(text)


def _spell(scorer: LexiconScorer, text: str) -> list[float]:
    state, scores = scorer.initial(), []
    for i in _ids(text):
        logp, state = scorer.score(state, i)
        scores.append(logp)
    return [*scores, scorer.final(state)]


def test_a_cmudict_file_reads_as_a_word_list(tmp_path):
    path = tmp_path / "words.dict"
    path.write_text(";;; a comment\n\nRead  R IY1 D\nread(2) R EH1 D\nhello HH AH0 L OW1\n# x\n")
    lexicon = Lexicon.read(path)
    assert lexicon.words == {"read", "hello"} and len(lexicon) == 2
    assert lexicon.begins("he") and lexicon.begins("read") and not lexicon.begins("reed")
    assert not lexicon.begins("hellos") and lexicon.has("hello") and not lexicon.has("hell")


def test_a_missing_or_empty_lexicon_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"lexicon: .*nope.txt is not a file"):
        Lexicon.read(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text(";;; only a comment\n")
    with pytest.raises(ValueError, match="expected at least one word"):
        Lexicon.read(tmp_path / "empty.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match=r"cannot read .* as UTF-8"):
        Lexicon.read(tmp_path / "bin.txt")


def test_a_word_that_leaves_the_lexicon_pays_once():
    scorer = LexiconScorer(Lexicon({"cat", "cattle", "a"}), ALPHABET.symbols)
    assert _spell(scorer, "a cat") == [0.0] * 6  # words, spaces and the end: free
    assert _spell(scorer, "cxtle") == [0.0, -1.0, 0.0, 0.0, 0.0, 0.0]  # leaves at x, once
    assert _spell(scorer, "catt a") == [0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0]  # no word: at " "
    assert _spell(scorer, "ca") == [0.0, 0.0, -1.0]  # ... or at the end
    space = ALPHABET.space
    assert scorer.score(scorer.initial(), space) == (0.0, ("", False))  # nothing ends here


def _posteriors(frames: list[dict[str, float]]) -> torch.Tensor:
    """(T, V) log-probabilities: each frame's given characters ("" the blank), the rest
    sharing what is left."""
    rows = []
    for frame in frames:
        row = torch.full((len(ALPHABET),), 1e-4)
        for c, p in frame.items():
            row[0 if c == "" else _ids(c)[0]] = p
        rows.append(row / row.sum())
    return torch.stack(rows).log()


def test_the_penalty_turns_a_non_word_into_the_word_the_acoustics_nearly_chose(tmp_path):
    frames = [{"c": 0.9}, {"": 0.9}, {"s": 0.55, "a": 0.4}, {"": 0.9}, {"t": 0.9}, {"": 0.9}]
    log_probs = _posteriors(frames)
    (tmp_path / "lexicon.txt").write_text("cat\ncut\n")
    assert Decoding(beam=8).text(log_probs, ALPHABET) == "cst"
    chosen = Decoding.of(beam=8, lexicon=tmp_path / "lexicon.txt")
    assert chosen.text(log_probs, ALPHABET) == "cat"
    free = Decoding.of(lexicon=tmp_path / "lexicon.txt", lexicon_penalty=0.0)
    assert free.beam == 16 and free.text(log_probs, ALPHABET) == "cst"  # λ 0: nothing changes
    assert chosen.describe() == {
        "search": "prefix beam",
        "beam": 8,
        "lexicon": str(tmp_path / "lexicon.txt"),
        "lexicon_words": 2,
        "lexicon_penalty": 5.0,
    }  # no LM: no bonus per symbol either
    with pytest.raises(ValueError, match="--lexicon-penalty goes with a lexicon"):
        Decoding.of(beam=8, lexicon_penalty=2.0)
    with pytest.raises(ValueError, match="lexicon_penalty must be >= 0"):
        Decoding(beam=8, lexicon=Lexicon({"cat"}), lexicon_penalty=-1.0)
    with pytest.raises(ValueError, match="needs a beam search"):
        Decoding(beam=1, lexicon=Lexicon({"cat"}))
