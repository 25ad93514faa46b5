"""MIDI files in and out for piano rolls and melodies (``mido``, the ``music`` extra).

Files we write: one track, ``TICKS`` ticks per quarter note, a tempo, note-off before
note-on at the same tick, and the end of the track at the end of the piece, so reading a
roll back gives the same roll (steps of repeated notes merge, as on the roll itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from elman.data.music import (
    PIANO_HIGH,
    PIANO_LOW,
    TICKS,
    Event,
    check_step,
    require_mido,
    spans_roll,
)
from elman.files import atomic_path


def _write(path: str | Path, notes: list[tuple[float, float, int]], end: float, bpm: float) -> Path:
    """notes: (start, end, pitch) in quarters."""
    mido = require_mido()
    if not bpm > 0:
        raise ValueError(f"tempo: expected beats per minute > 0, got {bpm!r}")
    events = []  # (tick, note-off first, message)
    for a, b, pitch in notes:
        events.append((round(a * TICKS), 1, mido.Message("note_on", note=pitch, velocity=80)))
        events.append((round(b * TICKS), 0, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, round(end * TICKS) - now)))
    with atomic_path(path) as tmp:
        mido.MidiFile(ticks_per_beat=TICKS, tracks=[track]).save(str(tmp))
    return Path(path)


def write_roll_midi(
    roll: Tensor, path: str | Path, step: float = 1.0, low: int = PIANO_LOW, bpm: float = 100.0
) -> Path:
    """A (T, P) roll as a MIDI file: each run of 1s in a column is one note."""
    step = check_step(step)
    if roll.dim() != 2:
        raise ValueError(f"roll: expected (steps, pitches), got shape {tuple(roll.shape)}")
    on = roll > 0.5
    notes = []
    for p in range(on.shape[1]):
        column, t = on[:, p].tolist(), 0
        while t < len(column):
            if column[t]:
                start = t
                while t < len(column) and column[t]:
                    t += 1
                notes.append((start * step, t * step, low + p))
            else:
                t += 1
    return _write(path, notes, roll.shape[0] * step, bpm)


def write_melody_midi(events: Sequence[Event], path: str | Path, bpm: float = 100.0) -> Path:
    """(pitch or None, duration) events one after another as a MIDI file."""
    notes, now = [], 0.0
    for pitch, length in events:
        if pitch is not None:
            notes.append((now, now + length, pitch))
        now += length
    return _write(path, notes, now, bpm)


def read_midi_spans(path: str | Path) -> tuple[list[tuple[float, float, int]], float]:
    """(start, end, pitch) of every note in quarters over all tracks and channels, and the
    file's length in quarters."""
    mido = require_mido()
    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError) as e:
        raise ValueError(f"{path}: not a readable MIDI file ({e})") from None
    spans, length = [], 0.0
    for track in midi.tracks:
        tick, sounding = 0, {}
        for message in track:
            tick += message.time
            if message.type not in ("note_on", "note_off"):
                continue
            key = (message.channel, message.note)
            if key in sounding and (message.type == "note_off" or message.velocity == 0):
                spans.append(
                    (
                        sounding.pop(key) / midi.ticks_per_beat,
                        tick / midi.ticks_per_beat,
                        message.note,
                    )
                )
            elif message.type == "note_on" and message.velocity > 0:
                sounding.setdefault(key, tick)
        length = max(length, tick / midi.ticks_per_beat)
    return spans, length


def read_midi_roll(
    path: str | Path, step: float = 1.0, low: int = PIANO_LOW, high: int = PIANO_HIGH
) -> Tensor:
    """The piano roll of a MIDI file on a grid of ``step`` quarters."""
    step = check_step(step)
    spans, length = read_midi_spans(path)
    if not spans:
        raise ValueError(f"{path}: the MIDI file has no notes")
    return spans_roll(spans, step, low, high, round(length / step))
