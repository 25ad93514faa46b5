"""Transcribed audio listed in manifests: a CSV/TSV table with a header, the LibriSpeech folder
layout, or a Common Voice TSV. Every reader returns ``Utterance``s whose audio paths are
resolved against the manifest's folder and checked to exist; errors name the file, the line
and the problem.
Transcripts are returned as written (normalising them is the task's business)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from elman.files import atomic_path

AUDIO_COLUMNS = ("path", "audio", "file", "wav")
TEXT_COLUMNS = ("transcript", "text", "sentence")
SPEAKER_COLUMNS = ("speaker", "client_id")
COMMON_VOICE_COLUMNS = ("client_id", "path", "sentence")
ACCEPTED = (
    "a LibriSpeech folder (speaker/chapter/*.flac with speaker-chapter.trans.txt), a Common "
    "Voice .tsv (columns client_id, path, sentence; clips/ beside it), or a CSV/TSV table whose "
    f"header names an audio column ({'/'.join(AUDIO_COLUMNS)}) and a text column "
    f"({'/'.join(TEXT_COLUMNS)})"
)


@dataclass(frozen=True)
class Utterance:
    """One recording and what is said in it; ``duration`` in seconds when the manifest
    gives it."""

    audio: Path
    text: str
    speaker: str | None = None
    duration: float | None = None


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read whatever ``path`` is: a folder is LibriSpeech, a .tsv whose header has client_id
    is Common Voice, any other file a table (``read_table``)."""
    path = Path(path)
    if path.is_dir():
        return read_librispeech(path)
    if not path.is_file():
        raise ValueError(f"manifest {str(path)!r} does not exist; expected {ACCEPTED}")
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        start = f.read(4096)
    try:
        first = next(csv.reader(io.StringIO(start), delimiter=_delimiter(path, start)), [])
    except ValueError as e:
        raise ValueError(f"{e}; accepted manifests: {ACCEPTED}") from None
    header = [h.strip().lower() for h in first]
    if path.suffix.lower() == ".tsv" and "client_id" in header:
        return read_common_voice(path)
    if not (set(header) & set(AUDIO_COLUMNS) and set(header) & set(TEXT_COLUMNS)):
        raise ValueError(
            f"{path}: its header {header} names no audio or no text column; expected {ACCEPTED}"
        )
    return read_table(path)


def read_table(path: str | Path) -> list[Utterance]:
    """A CSV or TSV (by extension, else sniffed) with a header row: the audio column is the
    first of path/audio/file/wav, the text column transcript/text/sentence, the speaker column
    (optional) speaker/client_id, and an optional duration column; other columns are ignored.
    Relative audio paths are relative to the table's folder."""
    path = Path(path)
    header, rows = _rows(path)
    columns = {
        "audio": _pick(header, AUDIO_COLUMNS, path, "audio"),
        "text": _pick(header, TEXT_COLUMNS, path, "text"),
        "speaker": _pick(header, SPEAKER_COLUMNS, path, None),
        "duration": _pick(header, ("duration",), path, None),
    }
    return [_utterance(path, n, header, row, columns, path.parent) for n, row in rows]


def read_common_voice(tsv: str | Path) -> list[Utterance]:
    """A Common Voice TSV (train.tsv, validated.tsv...): clips are in ``clips/`` beside it,
    the speaker is the client_id."""
    tsv = Path(tsv)
    header, rows = _rows(tsv)
    missing = [c for c in COMMON_VOICE_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{tsv}: not a Common Voice TSV, its header lacks {', '.join(missing)}; "
            f"expected columns {', '.join(COMMON_VOICE_COLUMNS)}"
        )
    columns: dict[str, str | None] = {
        "audio": "path",
        "text": "sentence",
        "speaker": "client_id",
        "duration": None,
    }
    clips = tsv.parent / "clips"
    return [_utterance(tsv, n, header, row, columns, clips) for n, row in rows]


def read_librispeech(folder: str | Path) -> list[Utterance]:
    """The LibriSpeech layout: ``speaker/chapter/speaker-chapter.trans.txt`` whose lines are
    ``speaker-chapter-utterance TEXT`` beside ``speaker-chapter-utterance.flac``."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"LibriSpeech folder {str(root)!r} does not exist")
    transcripts = sorted(root.rglob("*.trans.txt"))
    if not transcripts:
        raise ValueError(f"no LibriSpeech transcripts (*.trans.txt) under {str(root)!r}")
    found = []
    for trans in transcripts:
        for number, line in enumerate(trans.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            key, _, text = line.strip().partition(" ")
            if not text.strip():
                raise ValueError(f"{trans} line {number}: expected 'ID TEXT', got {line!r}")
            audio = trans.parent / f"{key}.flac"
            _exists(audio, trans, number)
            found.append(Utterance(audio, text.strip(), key.split("-")[0]))
    return found


def write_table(
    path: str | Path, rows: Sequence[Mapping[str, object]], columns: Sequence[str]
) -> None:
    """Write ``rows`` (column -> value; None is written empty) as a table that ``read_table``
    reads back: tab-separated for .tsv, else comma-separated; atomically."""
    path = Path(path)
    tsv = path.suffix.lower() == ".tsv"
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t" if tsv else ",", lineterminator="\n")
    writer.writerow(columns)
    for i, row in enumerate(rows):
        values = ["" if row.get(c) is None else str(row.get(c)) for c in columns]
        bad = [c for c, v in zip(columns, values, strict=True) if set(v) & {"\t", "\n", "\r"}]
        if bad:
            raise ValueError(f"row {i} column {bad[0]}: a tab or line break cannot be written")
        writer.writerow(values)
    with atomic_path(path) as tmp:
        tmp.write_text(out.getvalue(), "utf-8")


def _rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The lower-cased header and an iterator of (line number, fields) over the other
    non-blank lines; a row with the wrong number of fields is an error naming its line."""
    if not path.is_file():
        raise ValueError(f"manifest {str(path)!r} does not exist")
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    delimiter = _delimiter(path, text)
    # Common Voice's TSVs hold quotes inside sentences: a tab-separated file is read unquoted
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
    header = [h.strip().lower() for h in next(reader, [])]
    if not any(header):
        raise ValueError(f"{path}: empty; expected a header row naming the columns")

    def rows() -> Iterator[tuple[int, list[str]]]:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise ValueError(
                    f"{path} line {reader.line_num}: expected {len(header)} fields like the "
                    f"header, got {len(fields)}"
                )
            yield reader.line_num, fields

    return header, rows()


def _delimiter(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        return "\t" if suffix == ".tsv" else ","
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",\t;|").delimiter
    except csv.Error:
        raise ValueError(
            f"{path}: could not tell its delimiter; expected a .csv or .tsv table"
        ) from None


def _pick(header: list[str], names: Sequence[str], path: Path, role: str | None) -> str | None:
    for name in names:
        if name in header:
            return name
    if role is None:
        return None
    raise ValueError(
        f"{path}: no {role} column in the header {header}; expected one of {', '.join(names)}"
    )


def _utterance(
    path: Path,
    line: int,
    header: list[str],
    fields: list[str],
    columns: dict[str, str | None],
    base: Path,
) -> Utterance:
    where = f"{path} line {line}"
    row = dict(zip(header, fields, strict=True))
    audio_name = row[columns["audio"]].strip()
    text = row[columns["text"]].strip()
    if not audio_name:
        raise ValueError(f"{where}: empty {columns['audio']} (the audio file)")
    if not text:
        raise ValueError(f"{where}: empty {columns['text']} (the transcript)")
    audio = base / audio_name
    _exists(audio, path, line)
    speaker = row[columns["speaker"]].strip() if columns["speaker"] else ""
    return Utterance(audio, text, speaker or None, _duration(row, columns["duration"], where))


def _duration(row: dict[str, str], column: str | None, where: str) -> float | None:
    value = row.get(column, "").strip() if column else ""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0:
        raise ValueError(f"{where}: duration {value!r} is not a non-negative number of seconds")
    return seconds


def _exists(audio: Path, manifest: Path, line: int) -> None:
    if not audio.is_file():
        raise ValueError(f"{manifest} line {line}: audio file {str(audio)!r} does not exist")
