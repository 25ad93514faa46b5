"""eSpeak NG synthesis and the synthetic corpus made with it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from elman.data.brown import Brown
from elman.data.speech.corpus import (
    CorpusConfig,
    brown_sentences,
    make_corpus,
    normalise,
    ordinal,
    spell,
    split_voices,
    year,
)
from elman.data.speech.manifests import read_table
from elman.data.speech.synth import Synth

pytest.importorskip("espeakng_loader")
pytest.importorskip("soundfile")
pytest.importorskip("soxr")

TINY = CorpusConfig(
    train=3, valid=1, test=1, accents=("en-us", "en-gb"), variants=("m1", "f2", "klatt"),
    test_voices=2, valid_voices=1, wpm=(160, 200), pad=(0.0, 0.05), noise_prob=0.5,
    reverb_prob=0.5, seed=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def synth() -> Synth:
    return Synth()


def test_voices_and_variants(synth):
    assert {"en-us", "en-gb", "en-gb-scotland", "en-029"} <= set(synth.voices())
    assert "en-shaw" not in synth.voices()
    assert {"m1", "m7", "f5", "klatt", "croak"} <= set(synth.variants())
    assert synth.sample_rate == 22050
    assert synth.voice_name("en") == "en-gb"
    assert synth.voice_name("EN-US+f2") == synth.voice_name("en-us", "f2") == "en-us+f2"


@pytest.mark.parametrize("voice", ["en-us", "en-gb-scotland+klatt", "en-us+croak"])
def test_the_same_call_gives_the_same_samples(synth, voice):
    first, rate = synth.speak("the same words again", voice, wpm=190, pitch=40)
    second, _ = synth.speak("the same words again", voice, wpm=190, pitch=40)
    assert rate == 22050 and first.dtype == np.float32 and first.ndim == 1
    assert len(first) > 0.5 * rate and np.abs(first).max() <= 1
    assert np.array_equal(first, second)


def test_voices_rates_and_texts_change_the_audio(synth):
    base, _ = synth.speak("turn on the kitchen lights")
    other_voice, _ = synth.speak("turn on the kitchen lights", "en-us", "f2")
    other_accent, _ = synth.speak("turn on the kitchen lights", "en-gb-scotland")
    for x in (other_voice, other_accent):
        assert len(x) != len(base) or not np.array_equal(x, base)
    slow, _ = synth.speak("turn on the kitchen lights", wpm=100)
    fast, _ = synth.speak("turn on the kitchen lights", wpm=300)
    assert len(slow) > len(base) > len(fast)
    longer, _ = synth.speak("turn on the kitchen lights and the hallway lamp")
    assert len(longer) > len(base) * 1.3


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"voice": "fr"}, ValueError, "'fr' is not an English eSpeak NG voice; expected one of"),
        ({"voice": "en-us+nobody"}, ValueError, "variant 'nobody' is not .* croak, f1"),
        ({"voice": "en-us+m1", "variant": "f2"}, ValueError, "already names a variant"),
        ({"wpm": 20}, ValueError, r"wpm must be in \[80, 450\], got 20"),
        ({"pitch": 50.0}, TypeError, "pitch must be an integer, got 50.0"),
        ({"text": "  "}, ValueError, "text must be a non-empty string"),
    ],
)
def test_bad_arguments(synth, kwargs, error, message):
    with pytest.raises(error, match=message):
        synth.speak(**({"text": "hello"} | kwargs))


def test_normalise():
    assert (
        normalise("``Don't\u2019 -- he said, 'twas the dogs' bone!''")
        == "don't he said twas the dogs bone"
    )
    assert normalise("  Hello\tWORLD? ") == "hello world"
    for rejected in ("3 cats", "caf\u00e9", "50% off", "$5", "...", ""):
        assert normalise(rejected) is None


def test_spelled_numbers_dates_and_years():
    assert spell(0) == "zero" and spell(40) == "forty" and spell(312) == "three hundred and twelve"
    assert spell(1_000_005) == "one million and five"
    assert spell(21_400) == "twenty one thousand four hundred"
    assert [ordinal(n) for n in (1, 4, 12, 20, 23, 31)] == [
        "first", "fourth", "twelfth", "twentieth", "twenty third", "thirty first",
    ]  # fmt: skip
    assert [year(y) for y in (1990, 1905, 1900, 2000, 2005, 2021)] == [
        "nineteen ninety", "nineteen oh five", "nineteen hundred", "two thousand",
        "two thousand and five", "twenty twenty one",
    ]  # fmt: skip


def test_brown_sentences_count_what_they_reject():
    sentences = [
        [("The", "at"), ("dog", "nn"), ("barked", "vbd"), (".", ".")],
        [("Mr.", "np"), ("Smith", "np"), ("left", "vbd")],
        [("It", "pps"), ("cost", "vbd"), ("$5", "nns")],
        [("Too", "ql"), ("short", "jj")],
    ]
    pools, rejected = brown_sentences(Brown({"ca01": sentences}, {}), words=(3, 20))
    assert pools == {"train": ["the dog barked"], "valid": [], "test": []}
    assert rejected == {"abbreviation": 1, "characters": 1, "length": 1}


def test_split_voices_keeps_test_voices_out_of_training():
    voices = [f"{a}+{v}" for a in ("en-us", "en-gb", "en-029") for v in ("m1", "m2", "f1", "f2")]
    parts = split_voices(voices, test=3, valid=2, seed=7)
    assert len(parts["test"]) == 3 and len(parts["valid"]) == 2 and len(parts["train"]) == 7
    assert sorted(v for part in parts.values() for v in part) == sorted(voices)
    assert not set(parts["test"]) & set(parts["train"])
    assert split_voices(voices, test=3, valid=2, seed=7) == parts
    assert split_voices(voices, test=3, valid=2, seed=8) != parts
    with pytest.raises(ValueError, match="test \\+ valid must be under the 12 voices"):
        split_voices(voices, test=8, valid=4)
    with pytest.raises(ValueError, match="distinct"):
        split_voices(["a", "a", "b"], test=1, valid=0)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"train": -1}, "train must be a non-negative integer, got -1"),
        ({"train": 0, "valid": 0, "test": 0}, "train \\+ valid \\+ test must be at least 1"),
        ({"accents": ()}, "accents must be a non-empty tuple of distinct names"),
        ({"variants": ("m1", "m1")}, "variants must be a non-empty tuple of distinct names"),
        ({"test_voices": 5}, "test_voices \\+ valid_voices must be under 6"),
        ({"test_voices": 0}, "test_voices must be at least 1 when test > 0"),
        ({"noise_prob": 1.5}, "noise_prob must be a probability in \\[0, 1\\], got 1.5"),
        ({"wpm": (220, 130)}, "wpm must be a \\(int low, high\\) pair with 80 <= low"),
        ({"wpm": (100.5, 130)}, "wpm must be a \\(int low, high\\) pair"),
        ({"rt60": (0.1,)}, "rt60 must be a \\(float low, high\\) pair"),
        ({"rate": 1000}, "rate must be an integer of at least 4000"),
        ({"peak": 0}, "peak must be in \\(0, 1\\], got 0"),
    ],
)
def test_corpus_config_validation(change, message):
    with pytest.raises(ValueError, match=message):
        replace(TINY, **change)


def test_make_corpus_is_deterministic_and_reads_back(tmp_path):
    first = make_corpus(tmp_path / "a", TINY)
    second = make_corpus(tmp_path / "b", TINY)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len([f for f in files if f.suffix == ".wav"]) == 5
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert first == second == json.loads((tmp_path / "a" / "corpus.json").read_text())
    assert first["splits"]["train"]["utterances"] == 3 and first["brown"] is None
    train = read_table(tmp_path / "a" / "train.tsv")
    test = read_table(tmp_path / "a" / "test.tsv")
    assert all(u.audio.is_file() and u.duration > 0 for u in train + test)
    assert {u.speaker for u in train} <= set(first["splits"]["train"]["voices"])
    assert not {u.speaker for u in train} & set(first["splits"]["test"]["voices"])
    assert all(normalise(u.text) == u.text for u in train + test)
    header = (tmp_path / "a" / "train.tsv").read_text().splitlines()[0].split("\t")
    assert header == ["path", "transcript", "speaker", "duration", "wpm", "pitch", "snr_db", "rt60"]
    other = make_corpus(tmp_path / "c", replace(TINY, seed=4))
    assert other["splits"] != first["splits"]


def test_make_corpus_refuses_to_overwrite(tmp_path):
    (tmp_path / "old.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty; pass overwrite=True"):
        make_corpus(tmp_path, TINY)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "99999.wav").write_bytes(b"stale")
    summary = make_corpus(tmp_path, replace(TINY, train=1, valid=1, test=1), overwrite=True)
    assert summary["splits"]["train"]["utterances"] == 1
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["00000.wav"]
    assert (tmp_path / "old.txt").read_text() == "mine"


def test_make_corpus_speaks_brown_sentences_of_each_split(tmp_path):
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    files = {
        f"ca{i:02d}": [[("Sentence", "nn"), ("number", "nn"), (w, "cd")]]
        for i, w in enumerate(words, 1)
    }
    summary = make_corpus(tmp_path, replace(TINY, brown_share=1.0), brown=Brown(files, {}))
    assert summary["brown"]["sentences"] == {"train": 8, "valid": 1, "test": 1}
    assert summary["splits"]["train"]["kinds"] == {"brown": 3}
    assert [u.text for u in read_table(tmp_path / "valid.tsv")] == ["sentence number eight"]
    assert [u.text for u in read_table(tmp_path / "test.tsv")] == ["sentence number nine"]
