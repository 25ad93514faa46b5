"""A synthetic spoken corpus, made offline and deterministic for a seed: sentences (Brown's when
given, and spelled-out numbers, dates, times and short commands) spoken by eSpeak NG voices
(accent x variant), each at its own rate and pitch, some with reverberation and noise.

Whole voices go to train, validation or test (test voices are never heard in training); Brown
sentences follow Brown's split by file. Transcripts hold only lowercase a-z, space and '."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from elman.data.brown import Brown, read_brown
from elman.data.speech import audio
from elman.data.speech.manifests import write_table
from elman.data.speech.synth import Synth
from elman.fields import option
from elman.files import atomic_path, output_dir

SPLITS = ("train", "valid", "test")
COLUMNS = ("path", "transcript", "speaker", "duration", "wpm", "pitch", "snr_db", "rt60")
ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz' ")
PUNCTUATION = frozenset('.,;:!?"()[]{}-/`\u2013\u2014\u2026\u201c\u201d\u00ab\u00bb')
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
ACCENTS += ("en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6))
VARIANTS += ("klatt", "klatt2", "klatt3", "croak")

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
ONES = (ONES + "fifteen sixteen seventeen eighteen nineteen").split()
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth"}
ORDINAL |= {"nine": "ninth", "twelve": "twelfth"}
MONTHS = dict(january=31, february=28, march=31, april=30, may=31, june=30, july=31)
MONTHS |= dict(august=31, september=30, october=31, november=30, december=31)
SLOTS = {
    "room": ("kitchen", "bedroom", "living room", "bathroom", "hallway", "office", "garage"),
    "device": ("lights", "lamp", "fan", "heater", "radio", "television", "air conditioning"),
    "switch": ("on", "off"),
    "updown": ("up", "down"),
    "genre": ("jazz", "classical", "rock", "country", "folk", "blues", "relaxing"),
    "day": ("today", "tomorrow", "tonight", "this weekend", "on monday", "on friday"),
    "person": ("mom", "dad", "grandma", "the office", "my sister", "the doctor", "alice"),
    "task": ("buy milk", "water the plants", "call the dentist", "feed the cat", "pay the rent"),
    "door": ("front door", "back door", "garage door", "windows", "blinds", "curtains"),
    "open": ("open", "close", "lock", "unlock"),
    "item": ("eggs", "bread", "coffee", "apples", "rice", "butter", "orange juice"),
    "place": ("the airport", "the station", "work", "the nearest gas station", "the hospital"),
}
COMMANDS = (
    "turn {switch} the {room} {device}", "set a timer for {duration}", "set an alarm for {time}",
    "play some {genre} music", "what's the weather like {day}", "call {person}",
    "remind me to {task} {day}", "{open} the {door}", "turn the volume {updown}",
    "add {item} to the shopping list", "set the thermostat to {degrees} degrees",
    "how long will it take to get to {place}", "skip to the next song", "what time is it",
)  # fmt: skip
NUMBER_SAYINGS = ("{}", "the number is {}", "it costs {} dollars", "there were {} people there")
NUMBER_SAYINGS += ("turn to page {}", "room {}", "about {} miles away", "the total came to {}")
DATE_SAYINGS = ("{}", "my birthday is on {}", "the meeting is on {}", "it happened on {}")
TIME_SAYINGS = ("{}", "it's {}", "the train leaves at {}", "wake me up at {}", "see you at {}")


def normalise(text: str) -> str | None:
    """Lowercase, punctuation turned to spaces (apostrophes kept inside words: "don't"),
    spaces collapsed; None when anything else is left (digits, symbols such as $ or %,
    letters outside a-z), or nothing: the caller counts what it rejects."""
    text = re.sub(r"``|''", " ", text.replace("\u2019", "'").replace("\u2018", "'").lower())
    text = "".join(" " if c in PUNCTUATION or c.isspace() else c for c in text)
    if not ALPHABET.issuperset(text):
        return None
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)
    return " ".join(text.split()) or None


def spell(n: int) -> str:
    """0 <= n < 10**9 in words, British style: 312 -> "three hundred and twelve"."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + (" and " + spell(rest) if rest else "")
    scale, word = (10**6, "million") if n >= 10**6 else (1000, "thousand")
    head, rest = divmod(n, scale)
    tail = "" if not rest else (" and " if rest < 100 else " ") + spell(rest)
    return f"{spell(head)} {word}{tail}"


def ordinal(n: int) -> str:
    """4 -> "fourth", 21 -> "twenty first", 30 -> "thirtieth"."""
    *head, last = spell(n).split()
    last = ORDINAL.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return " ".join([*head, last])


def year(y: int) -> str:
    """1990 -> "nineteen ninety", 1905 -> "nineteen oh five", 2005 -> "two thousand and five"."""
    if 2000 <= y < 2010 or y % 1000 == 0:
        return spell(y)
    high, low = divmod(y, 100)
    tail = "hundred" if low == 0 else f"oh {ONES[low]}" if low < 10 else spell(low)
    return f"{spell(high)} {tail}"


def _pick(rng: np.random.Generator, items: tuple | list) -> str:
    return items[int(rng.integers(len(items)))]


def _number(rng: np.random.Generator) -> str:
    digits = int(rng.integers(1, 8))  # as many small numbers as large ones
    n = int(rng.integers(10 ** (digits - 1), 10**digits))
    return _pick(rng, NUMBER_SAYINGS).format(spell(n))


def _date(rng: np.random.Generator) -> str:
    month = _pick(rng, list(MONTHS))
    day = ordinal(int(rng.integers(1, MONTHS[month] + 1)))
    text = _pick(rng, (f"the {day} of {month}", f"{month} the {day}", f"{month} {day}"))
    if rng.random() < 0.5:
        text += " " + year(int(rng.integers(1900, 2031)))
    return _pick(rng, DATE_SAYINGS).format(text)


def _clock(rng: np.random.Generator) -> str:
    hour, minute = int(rng.integers(1, 13)), _pick(rng, (0, 15, 30, 45, int(rng.integers(1, 60))))
    h, after = spell(hour), spell(hour % 12 + 1)
    named = {0: f"{h} o'clock", 15: f"quarter past {h}", 30: f"half past {h}"}
    named[45] = f"quarter to {after}"
    text = named.get(minute) or f"{h} {'oh ' if minute < 10 else ''}{spell(minute)}"
    if rng.random() < 0.3:
        text += " " + _pick(rng, ("in the morning", "in the afternoon", "in the evening"))
    return text


def _command(rng: np.random.Generator) -> str:
    n, unit = int(rng.integers(1, 61)), _pick(rng, ("minute", "second", "hour"))
    slots = {k: _pick(rng, v) for k, v in SLOTS.items()}
    slots |= {"duration": f"{spell(n)} {unit}{'s' if n > 1 else ''}", "time": _clock(rng)}
    return _pick(rng, COMMANDS).format(**slots, degrees=spell(int(rng.integers(60, 81))))


GENERATED = {"number": _number, "date": _date, "command": _command}
GENERATED["time"] = lambda rng: _pick(rng, TIME_SAYINGS).format(_clock(rng))


def brown_sentences(brown: Brown, words: tuple[int, int] = (3, 20)) -> tuple[dict, Counter]:
    """Brown's sentences per split (``Brown.split``), normalised, with ``words`` (min, max)
    words; and the count of those rejected, by reason: an abbreviation ("Mr.": eSpeak would say
    "mister"), a character outside the alphabet, or the length."""
    pools: dict[str, list[str]] = {}
    rejected: Counter = Counter()
    for split, files in brown.split().items():
        pools[split] = []
        for sentence in (s for f in files for s in brown.files[f]):
            tokens = [w for w, _ in sentence]
            text = normalise(" ".join(tokens))
            if any("." in w and w.strip(".") for w in tokens):
                rejected["abbreviation"] += 1
            elif text is None:
                rejected["characters"] += 1
            elif not words[0] <= len(text.split()) <= words[1]:
                rejected["length"] += 1
            else:
                pools[split].append(text)
    return pools, rejected


def split_voices(
    voices: list[str] | tuple[str, ...], test: int, valid: int, seed: int = 0
) -> dict[str, list[str]]:
    """Whole voices to each split, drawn with ``seed``: ``test`` voices only in test,
    ``valid`` only in validation, the rest (at least one) in training."""
    if len(set(voices)) != len(voices) or not all(isinstance(v, str) and v for v in voices):
        raise ValueError(f"voices must be distinct non-empty names, got {list(voices)}")
    for name, count in (("test", test), ("valid", valid)):
        _check(_number_ok(count, int) and count >= 0, name, count, "a non-negative integer")
    held = f"under the {len(voices)} voices (one at least is for training)"
    _check(test + valid < len(voices), "test + valid", test + valid, held)
    order = [sorted(voices)[i] for i in np.random.default_rng(seed).permutation(len(voices))]
    parts = {"test": order[:test], "valid": order[test : test + valid]}
    return {"train": sorted(order[test + valid :])} | {k: sorted(v) for k, v in parts.items()}


def _number_ok(value: object, kind: type = float) -> bool:
    return isinstance(value, kind | int) and not isinstance(value, bool)


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _pair(name: str, value: object, low: float, high: float, kind: type = float) -> None:
    ok = isinstance(value, tuple) and len(value) == 2 and all(_number_ok(v, kind) for v in value)
    expected = f"a ({kind.__name__} low, high) pair with {low} <= low <= high <= {high}"
    _check(ok and low <= value[0] <= value[1] <= high, name, value, expected)


@dataclass(frozen=True, kw_only=True)
class CorpusConfig:
    """What ``make_corpus`` makes; ranges are (low, high) pairs drawn uniformly."""

    train: int = option(1000, "training utterances")
    valid: int = option(100, "validation utterances")
    test: int = option(100, "test utterances")
    accents: tuple[str, ...] = option(ACCENTS, "eSpeak NG English accents (Synth.voices())")
    variants: tuple[str, ...] = option(VARIANTS, "voice variants; a voice is accent+variant")
    test_voices: int = option(12, "voices heard only in test")
    valid_voices: int = option(6, "voices heard only in validation")
    brown_share: float = option(0.6, "share of Brown sentences, when Brown is given")
    words: tuple[int, int] = option((3, 20), "words in a Brown sentence kept (min, max)")
    wpm: tuple[int, int] = option((130, 220), "speaking rate, words per minute")
    pitch: tuple[int, int] = option((30, 70), "eSpeak base pitch (0-100)")
    noise_prob: float = option(0.5, "probability of additive noise (white or brown)")
    snr_db: tuple[float, float] = option((10.0, 30.0), "signal-to-noise ratio of that noise")
    reverb_prob: float = option(0.3, "probability of reverberation")
    rt60: tuple[float, float] = option((0.1, 0.6), "reverberation time, seconds")
    pad: tuple[float, float] = option((0.05, 0.3), "silence before and after, seconds")
    rate: int = option(16000, "sample rate of the files, Hz")
    peak: float = option(0.9, "peak amplitude after normalisation")
    seed: int = option(0, "seed of every random draw")

    def __post_init__(self) -> None:
        for name in ("train", "valid", "test", "test_voices", "valid_voices", "seed"):
            value = getattr(self, name)
            _check(_number_ok(value, int) and value >= 0, name, value, "a non-negative integer")
        _check(self.train + self.valid + self.test > 0, "train + valid + test", 0, "at least 1")
        for name in ("accents", "variants"):
            names = getattr(self, name)
            ok = isinstance(names, tuple) and len(set(names)) == len(names) > 0
            _check(ok, name, names, "a non-empty tuple of distinct names")
        held, voices = self.test_voices + self.valid_voices, len(self.accents) * len(self.variants)
        _check(held < voices, "test_voices + valid_voices", held, f"under {voices} (all voices)")
        for name in ("test", "valid"):
            if getattr(self, name) and not getattr(self, f"{name}_voices"):
                raise ValueError(f"{name}_voices must be at least 1 when {name} > 0, got 0")
        for name in ("brown_share", "noise_prob", "reverb_prob"):
            value = getattr(self, name)
            _check(_number_ok(value) and 0 <= value <= 1, name, value, "a probability in [0, 1]")
        _pair("words", self.words, 1, 1000, int)
        _pair("wpm", self.wpm, 80, 450, int)
        _pair("pitch", self.pitch, 0, 100, int)
        _pair("snr_db", self.snr_db, -20, 100)
        _pair("rt60", self.rt60, 0.01, 5)
        _pair("pad", self.pad, 0, 10)
        ok = _number_ok(self.rate, int) and self.rate >= 4000
        _check(ok, "rate", self.rate, "an integer of at least 4000 (Hz)")
        _check(_number_ok(self.peak) and 0 < self.peak <= 1, "peak", self.peak, "in (0, 1]")


def make_corpus(
    out_dir: str | Path,
    config: CorpusConfig | None = None,
    brown: str | Path | Brown | None = None,
    overwrite: bool = False,
) -> dict:
    """Write ``out_dir/{train,valid,test}/NNNNN.wav`` (16-bit, ``config.rate``), the manifests
    ``out_dir/{split}.tsv`` (``read_table`` reads them) and ``out_dir/corpus.json`` (what it
    holds: utterances, hours, voices and sentence kinds per split, the config), which is
    also returned. ``brown``: the Brown corpus folder (or a read ``Brown``); without it every
    sentence is generated. An existing non-empty ``out_dir`` is refused unless ``overwrite``."""
    config = config or CorpusConfig()
    if not isinstance(config, CorpusConfig):
        raise TypeError(f"config must be a CorpusConfig, got {type(config).__name__}")
    synth = Synth()
    voices = [synth.voice_name(a, v) for a in config.accents for v in config.variants]
    if len(set(voices)) < len(voices):
        raise ValueError(f"accents {config.accents} name the same eSpeak NG accent twice")
    parts = split_voices(voices, config.test_voices, config.valid_voices, config.seed)
    if isinstance(brown, str | Path):
        brown = read_brown(brown)
    pools, rejected = brown_sentences(brown, config.words) if brown else ({}, Counter())
    out = _prepare(Path(out_dir), overwrite)
    summary: dict = {"seed": config.seed, "sample_rate": config.rate, "splits": {}}
    for split in SPLITS:
        pool = pools.get(split, [])
        summary["splits"][split] = _write_split(synth, config, out, split, pool, parts[split])
    summary["hours"] = round(sum(s["hours"] for s in summary["splits"].values()), 4)
    summary["synth"] = f"eSpeak NG {synth.version}"
    sentences = {k: len(v) for k, v in pools.items()}
    summary["brown"] = {"sentences": sentences, "rejected": dict(rejected)} if brown else None
    summary["config"] = asdict(config)
    text = json.dumps(summary, indent=1) + "\n"
    with atomic_path(out / "corpus.json") as tmp:  # written last: its presence means complete
        tmp.write_text(text, "utf-8")
    return json.loads(text)


def _prepare(out: Path, overwrite: bool) -> Path:
    out = output_dir(out, "out_dir")
    if not overwrite and out.exists() and any(out.iterdir()):
        raise ValueError(f"out_dir {str(out)!r} is not empty; pass overwrite=True to replace")
    for split in SPLITS:  # only what make_corpus writes goes: stale files would mix in
        shutil.rmtree(out / split, ignore_errors=True)
        (out / split).mkdir(parents=True)
        (out / f"{split}.tsv").unlink(missing_ok=True)
    (out / "corpus.json").unlink(missing_ok=True)
    return out


def _write_split(
    synth: Synth, config: CorpusConfig, out: Path, split: str, pool: list[str], voices: list[str]
) -> dict:
    rows = []
    for i in range(getattr(config, split)):
        # each utterance's draws depend on (seed, split, index) only
        rng = np.random.default_rng([config.seed, SPLITS.index(split), i])
        samples, row = _utterance(synth, config, rng, pool, voices)
        rows.append({"path": f"{split}/{i:05d}.wav"} | row)
        audio.write_wav(out / rows[-1]["path"], samples, config.rate)
    write_table(out / f"{split}.tsv", rows, COLUMNS)
    return {
        "utterances": len(rows),
        "hours": round(sum(r["duration"] for r in rows) / 3600, 4),
        "voices": voices,
        "kinds": dict(sorted(Counter(r["kind"] for r in rows).items())),
    }


def _utterance(
    synth: Synth, config: CorpusConfig, rng: np.random.Generator, pool: list[str], voices: list
) -> tuple[np.ndarray, dict]:
    """One utterance's samples, and its row of the manifest (less the path)."""
    kind = "brown" if pool and rng.random() < config.brown_share else _pick(rng, list(GENERATED))
    text = _pick(rng, pool) if kind == "brown" else GENERATED[kind](rng)
    voice = _pick(rng, voices)
    wpm, pitch = (int(rng.integers(lo, hi + 1)) for lo, hi in (config.wpm, config.pitch))
    samples, native = synth.speak(text, voice, wpm=wpm, pitch=pitch)
    x = audio.resample(samples, native, config.rate)
    pads = [np.zeros(int(s * config.rate), np.float32) for s in rng.uniform(*config.pad, 2)]
    x = np.concatenate([pads[0], x, pads[1]])
    rt60 = snr = None
    if rng.random() < config.reverb_prob:
        rt60 = round(float(rng.uniform(*config.rt60)), 3)
        x = audio.reverberate(x, rt60, config.rate, rng)
    if rng.random() < config.noise_prob:
        snr = round(float(rng.uniform(*config.snr_db)), 1)
        x = audio.add_noise(x, snr, rng, _pick(rng, audio.NOISES))
    duration = round(len(x) / config.rate, 3)
    row = {"transcript": text, "speaker": voice, "duration": duration, "wpm": wpm}
    row |= {"pitch": pitch, "snr_db": snr, "rt60": rt60, "kind": kind}
    return audio.peak_normalise(x, config.peak), row
