"""Piano rolls and MIDI: exact round trips, the quantisation rule, clear errors."""

from __future__ import annotations

import pytest
import torch

from elman.data import music

mido = pytest.importorskip("mido")


def test_roll_midi_roll_round_trip(tmp_path):
    from elman.data.midi import read_midi_roll, write_roll_midi

    g = torch.Generator().manual_seed(0)
    roll = (torch.rand(40, 88, generator=g) < 0.08).float()
    roll[-1, 10] = 0.0
    roll[-1].zero_()  # trailing silence survives through the end-of-track time
    path = write_roll_midi(roll, tmp_path / "r.mid", step=0.5)
    assert torch.equal(read_midi_roll(path, step=0.5), roll)


def test_melody_midi_holds_the_notes_and_rests(tmp_path):
    from elman.data.midi import read_midi_spans, write_melody_midi

    events = [(60, 1.0), (None, 0.5), (62, 0.5), (64, 2.0)]
    spans, length = read_midi_spans(write_melody_midi(events, tmp_path / "m.mid"))
    assert spans == [(0.0, 1.0, 60), (1.5, 2.0, 62), (2.0, 4.0, 64)] and length == 4.0
    assert [music.token_event(music.event_token(e)) for e in events] == events


def test_spans_on_the_grid():
    spans = [(0.0, 1.0, 60), (0.5, 2.0, 64), (2.0, 2.1, 67), (1.25, 1.4, 62)]
    roll = music.spans_roll(spans, 0.5, 60, 67)
    assert roll.shape == (5, 8)
    assert roll[:, 0].tolist() == [1, 1, 0, 0, 0]  # a quarter note: two eighth rows
    assert roll[:, 4].tolist() == [0, 1, 1, 1, 0]
    assert roll[:, 7].tolist() == [0, 0, 0, 0, 1]  # sounds at the grid point 2.0: one row
    assert roll[:, 2].sum() == 0  # between grid points 1.0 and 1.5: dropped
    with pytest.raises(ValueError, match="sound on the grid"):
        music.spans_roll([(1.25, 1.4, 62)], 0.5, 60, 67)
    up = music.transpose_roll(roll, 3)
    assert up[:, 3].tolist() == roll[:, 0].tolist() and up[:, 7].sum() == roll[:, 4].sum()
    assert music.transpose_roll(roll, -1)[:, 6].tolist() == roll[:, 7].tolist()


def test_a_music21_score_becomes_a_roll():
    m21 = pytest.importorskip("music21")
    s = m21.stream.Stream()
    s.append(m21.chord.Chord(["C4", "E4", "G4"], quarterLength=2.0))
    s.append(m21.note.Rest(quarterLength=1.0))
    s.append(m21.note.Note("A4", quarterLength=1.0))
    roll = music.score_roll(s, step=1.0)
    assert roll.shape == (4, 88)
    assert roll.sum(0).nonzero().flatten().tolist() == [60 - 21, 64 - 21, 67 - 21, 69 - 21]
    assert roll[:, 60 - 21].tolist() == [1, 1, 0, 0] and roll[3, 69 - 21] == 1
    assert music.key_shift(s) == 0  # C major


def test_bad_input_is_named(tmp_path):
    from elman.data.midi import read_midi_roll, write_melody_midi

    empty = write_melody_midi([(None, 2.0)], tmp_path / "empty.mid")
    with pytest.raises(ValueError, match="has no notes"):
        read_midi_roll(empty)
    (tmp_path / "junk.mid").write_bytes(b"not midi")
    with pytest.raises(ValueError, match="not a readable MIDI file"):
        read_midi_roll(tmp_path / "junk.mid")
    with pytest.raises(ValueError, match="step"):
        music.spans_roll([(0, 1, 60)], 0, 21, 108)
    with pytest.raises(ValueError, match="token"):
        music.token_event("C4-quarter")
    pytest.importorskip("music21")
    with pytest.raises(ValueError, match="match: no file of the essenFolksong collection"):
        music.load_melodies("essenFolksong", "no-such-file")
    with pytest.raises(ValueError, match="collection"):
        music.load_melodies("bachChoralesX")


def test_cache_round_trip_limit_and_rule(tmp_path):
    pieces = [music.Piece(f"p{i}", (torch.rand(5 + i, 88) < 0.1).float(), i - 1) for i in range(3)]
    path = tmp_path / "c.safetensors"
    music.write_pieces(path, pieces, 0.5)
    back = music.load_chorales(0.5, path, limit=2)  # read from the cache, no parsing
    assert [p.name for p in back] == ["p0", "p1"] and back[1].shift == 0
    assert all(torch.equal(a.roll, b.roll) for a, b in zip(back, pieces, strict=False))
    with pytest.raises(ValueError, match="cache"):
        music.read_pieces(path, 1.0)
    from safetensors.torch import save_file

    old = {"step": "0.5", "pieces": '[["p0", 0, 1]]'}  # the first cache format: no rule
    save_file({"rolls": torch.zeros(1, 88, dtype=torch.uint8)}, str(path), old)
    assert music.read_pieces(path, 0.5) is None  # made by an older rule: parse again


@pytest.mark.parametrize(
    "content",
    [
        b"just some notes of mine\n",  # safetensors reads a text file as 'header too large'
        b"",
        "checkpoint",  # a safetensors file that holds no rolls
        "bad-pieces",  # rolls, but a piece list that does not read
    ],
)
def test_a_file_that_is_not_a_roll_cache_is_refused_and_left_alone(tmp_path, content):
    from safetensors.torch import save_file

    path = tmp_path / "mine.safetensors"
    if content == "checkpoint":
        save_file({"model.w": torch.zeros(2)}, str(path), {"elman": "{}"})
    elif content == "bad-pieces":
        rolls = {"rolls": torch.zeros(1, 88, dtype=torch.uint8)}
        save_file(rolls, str(path), {"rule": music.ROLL_RULE, "step": "1.0", "pieces": "[["})
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"cache: '.*mine.safetensors' is not a roll cache"):
        music.load_chorales(1.0, path)
    assert path.read_bytes() == before
