"""Music as sequences: piano rolls of Bach chorales and note tokens of folk melodies, from the
corpus the ``music21`` package ships (``pip install elman[music]``), and MIDI files in and
out (``mido``).

A piano roll is a (T, P) 0/1 tensor: row t holds the pitches sounding at time t * ``step``
quarter notes (the grid samples the score), column p the MIDI pitch ``low + p``. A note from
offset a to a + d covers the rows t with a <= t * step < a + d: a note between two grid
points is dropped, and repeated notes merge, as in the JSB Chorales set (Boulanger-
Lewandowski et al. 2012: sampled at quarter notes, 88 keys, MIDI 21..108).

A melody is a list of (pitch, duration) events: MIDI pitch or None for a rest, duration in
quarter notes (music21's ``quarterLength``, rounded to ``grid``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from elman.files import atomic_path

PIANO_LOW, PIANO_HIGH = 21, 108  # the 88 keys
TICKS = 480  # MIDI ticks per quarter note in the files we write
ROLL_RULE = "sampled-v1"  # cache files of rolls made by another rule are parsed again
Event = tuple[int | None, float]


def require_music21():
    try:
        import music21
    except ImportError as e:
        raise ImportError(
            "reading the music corpus needs music21, which ships the Bach chorales and the "
            "folk-song collections: pip install music21 (or elman[music])"
        ) from e
    return music21


def require_mido():
    try:
        import mido
    except ImportError as e:
        raise ImportError("MIDI files need mido: pip install mido (or elman[music])") from e
    return mido


def check_step(step: float) -> float:
    if not isinstance(step, int | float) or isinstance(step, bool) or not step > 0:
        raise ValueError(f"step: expected a positive number of quarter notes, got {step!r}")
    return float(step)


def score_roll(score, step: float = 1.0, low: int = PIANO_LOW, high: int = PIANO_HIGH) -> Tensor:
    """The piano roll (T, high - low + 1) of a music21 score; pitches outside are dropped."""
    step = check_step(step)
    spans = []
    for element in score.flatten().notes:
        start, length = float(element.offset), float(element.duration.quarterLength)
        if length <= 0:  # grace notes take no time
            continue
        for pitch in element.pitches:
            spans.append((start, start + length, pitch.midi))
    return spans_roll(spans, step, low, high)


def spans_roll(
    spans: Iterable[tuple[float, float, int]], step: float, low: int, high: int, rows: int = 0
) -> Tensor:
    """A roll from (start, end, MIDI pitch) spans in quarter notes, at least ``rows`` long."""
    step = check_step(step)
    spans = [s for s in spans if low <= s[2] <= high]
    if not spans:
        raise ValueError(f"the piece has no notes in the pitch range {low}..{high}")
    # rows t with a <= t * step < b; the tolerance keeps t * step == a inside despite rounding
    cells = [(_ceil(a / step), _ceil(b / step), pitch - low) for a, b, pitch in spans]
    cells = [c for c in cells if c[1] > c[0]]
    if not cells:
        raise ValueError(f"the piece has no notes that sound on the grid of {step} quarters")
    roll = torch.zeros(max(rows, max(b for _, b, _ in cells)), high - low + 1)
    for a, b, p in cells:
        roll[a:b, p] = 1.0
    return roll


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


def transpose_roll(roll: Tensor, semitones: int) -> Tensor:
    """The roll moved up (or down) by ``semitones``; notes pushed off the range are dropped."""
    out = torch.zeros_like(roll)
    if semitones >= 0:
        out[:, semitones:] = roll[:, : roll.shape[1] - semitones]
    else:
        out[:, :semitones] = roll[:, -semitones:]
    return out


def key_shift(score) -> int:
    """Semitones (-6..5) that move the analysed key's tonic to C (major and minor alike, as
    the JSB set's C major / C minor transposition)."""
    tonic = score.analyze("key").tonic.pitchClass
    return -tonic if tonic < 6 else 12 - tonic


@dataclass(frozen=True)
class Piece:
    """A roll (T, 88) on the piano's range, its name, and the shift to C (``key_shift``)."""

    name: str
    roll: Tensor
    shift: int


def load_chorales(
    step: float = 1.0, cache: str | Path | None = None, limit: int | None = None
) -> list[Piece]:
    """The 371 chorales of ``music21.corpus.chorales.Iterator()`` (Riemenschneider order) as
    rolls on the 88 keys. Parsing takes a minute or two; ``cache`` (a .safetensors file) keeps
    the result, and a later call with the same ``step`` reads it instead."""
    step = check_step(step)
    if cache is not None and Path(cache).exists():
        pieces = read_pieces(cache, step)
        if pieces is not None:
            return pieces if limit is None else pieces[:limit]
    corpus = require_music21().corpus
    pieces = []
    for score in corpus.chorales.Iterator():
        name = str(score.metadata.corpusFilePath or score.metadata.title)
        pieces.append(Piece(name, score_roll(score, step), key_shift(score)))
        if limit is not None and len(pieces) >= limit:
            break
    if not pieces:
        raise ValueError("music21's chorale iterator produced no chorales")
    if cache is not None and limit is None:
        write_pieces(cache, pieces, step)
    return pieces


def write_pieces(path: str | Path, pieces: Sequence[Piece], step: float) -> None:
    """Rolls, names and shifts in one safetensors file (written atomically)."""
    from safetensors.torch import save_file

    meta = {
        "rule": ROLL_RULE,
        "step": str(step),
        "pieces": json.dumps([[p.name, p.shift, p.roll.shape[0]] for p in pieces]),
    }
    with atomic_path(path) as tmp:
        save_file({"rolls": torch.cat([p.roll for p in pieces]).to(torch.uint8)}, str(tmp), meta)


def read_pieces(path: str | Path, step: float) -> list[Piece] | None:
    """The pieces of a cache file; None when it was made by an older roll rule (parse again).
    A file that is not a roll cache is an error, so that it is never overwritten."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta, tensors = f.metadata() or {}, set(f.keys())
            if "rolls" not in tensors or not {"step", "pieces"} <= set(meta):
                raise _not_a_cache(path, "no 'rolls' tensor with 'step' and 'pieces' metadata")
            rolls = f.get_tensor("rolls").float()
    except SafetensorError as e:
        raise _not_a_cache(path, f"SafetensorError: {e}") from None
    if meta.get("rule") != ROLL_RULE:
        return None
    try:
        grid = float(meta["step"])
        listed = [
            (str(name), int(shift), int(rows)) for name, shift, rows in json.loads(meta["pieces"])
        ]
    except (ValueError, TypeError, RecursionError) as e:
        raise _not_a_cache(path, f"its metadata does not read: {e}") from None
    if grid != step:
        raise ValueError(
            f"cache: {path} holds rolls on a grid of {meta['step']} quarter notes, not {step}; "
            "give another cache file"
        )
    if rolls.dim() != 2 or sum(rows for _, _, rows in listed) != rolls.shape[0]:
        raise _not_a_cache(path, "its rolls do not match its piece list")
    pieces, row = [], 0
    for name, shift, rows in listed:
        pieces.append(Piece(name, rolls[row : row + rows], shift))
        row += rows
    return pieces


def _not_a_cache(path: str | Path, why: str) -> ValueError:
    return ValueError(
        f"cache: {str(path)!r} is not a roll cache ({why}); expected a .safetensors file of "
        "parsed chorales written by elman. It was left as it is: give another cache path"
    )


def split_pieces(count: int, seed: int, fractions: tuple[float, float] = (0.62, 0.19)):
    """Seeded (train, valid, test) index lists by piece (JSB's 229/76/77 proportions)."""
    perm = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    a = round(count * fractions[0])
    b = a + round(count * fractions[1])
    return perm[:a], perm[a:b], perm[b:]


class Melody(NamedTuple):
    """A tune ("FILE#k": the k-th of its file) and its (pitch, duration) events."""

    name: str
    events: list[Event]


def load_melodies(
    collection: str = "essenFolksong",
    match: str | None = None,
    grid: float = 0.25,
    limit: int | None = None,
) -> list[Melody]:
    """Melodies of a music21 corpus collection (``essenFolksong``, ``oneills1850``), from the
    files whose name contains ``match``: events of (MIDI pitch or None for a rest, duration
    in quarters rounded to ``grid``). Chords keep their top note."""
    grid = check_step(grid)
    corpus = require_music21().corpus
    paths = [p for p in corpus.getPaths() if collection in Path(p).parts]
    if not paths:
        raise ValueError(f"collection: music21's corpus has no collection {collection!r}")
    paths = [p for p in paths if match is None or match in Path(p).name]
    if not paths:
        raise ValueError(f"match: no file of the {collection} collection contains {match!r}")
    melodies = []
    for path in sorted(paths):
        parsed = corpus.parse(path)
        for k, score in enumerate(getattr(parsed, "scores", None) or [parsed]):
            events = score_melody(score, grid)
            if events:
                melodies.append(Melody(f"{Path(path).name}#{k}", events))
            if limit is not None and len(melodies) >= limit:
                return melodies
    if not melodies:
        raise ValueError(f"the {collection} files matching {match!r} hold no notes")
    return melodies


def score_melody(score, grid: float) -> list[Event]:
    """The (pitch, duration) events of a score's flattened notes and rests."""
    events: list[Event] = []
    for element in score.flatten().notesAndRests:
        length = round(float(element.duration.quarterLength) / grid) * grid
        if length <= 0:
            continue
        pitch = None if element.isRest else max(p.midi for p in element.pitches)
        events.append((pitch, length))
    return events if any(p is not None for p, _ in events) else []


def event_token(event: Event) -> str:
    """ "60/1.0" for a middle C quarter note, "r/0.5" for an eighth rest."""
    pitch, length = event
    return f"{'r' if pitch is None else pitch}/{length:g}"


def token_event(token: str) -> Event:
    pitch, _, length = token.partition("/")
    try:
        return (None if pitch == "r" else int(pitch)), float(length)
    except ValueError:
        raise ValueError(
            f"token: expected 'PITCH/DURATION' or 'r/DURATION', got {token!r}"
        ) from None
