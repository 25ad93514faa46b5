"""Reading and writing audio, PCM bytes, the corpus augmentations, and the manifest readers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elman.data.speech.audio import (
    add_noise,
    float_to_pcm16,
    pcm16_to_float,
    peak_normalise,
    read_audio,
    require,
    reverberate,
    write_wav,
)
from elman.data.speech.manifests import (
    Utterance,
    read_common_voice,
    read_librispeech,
    read_manifest,
    read_table,
    write_table,
)

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def test_read_audio_downmixes_stereo_and_resamples_keeping_the_frequency(tmp_path):
    tone = sine(1000, 44100, 0.5, amplitude=1.0)
    sf.write(tmp_path / "a.wav", np.stack([0.8 * tone, 0.2 * tone], axis=1), 44100)
    x = read_audio(tmp_path / "a.wav", rate=16000)
    assert x.dtype == torch.float32 and x.ndim == 1
    assert abs(len(x) - 8000) <= 2
    assert abs(peak_hz(x.numpy(), 16000) - 1000) <= 4
    middle = x[1000:-1000]
    assert middle.abs().max().item() == pytest.approx(0.5, abs=0.02)  # the mean of 0.8 and 0.2


@pytest.mark.parametrize("suffix", ["flac", "ogg"])
def test_read_audio_reads_flac_and_ogg(tmp_path, suffix):
    sf.write(tmp_path / f"a.{suffix}", sine(440, 16000, 0.25), 16000)
    x = read_audio(tmp_path / f"a.{suffix}", rate=16000)
    assert abs(len(x) - 4000) <= 2 and abs(peak_hz(x.numpy(), 16000) - 440) <= 8


def test_read_audio_errors_name_the_path_and_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"missing.wav.*does not exist"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="is a directory"):
        read_audio(tmp_path)
    (tmp_path / "notes.wav").write_text("not audio at all\n")
    with pytest.raises(ValueError, match=r"notes.wav.*could not be decoded"):
        read_audio(tmp_path / "notes.wav")
    (tmp_path / "song.mp3").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ValueError, match=r"song.mp3.*could not be decoded"):
        read_audio(tmp_path / "song.mp3")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match=r"empty.wav.*empty"):
        read_audio(tmp_path / "empty.wav")
    sf.write(tmp_path / "long.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(ValueError, match=r"1\.00 s long, over the limit max_seconds=0\.5"):
        read_audio(tmp_path / "long.wav", max_seconds=0.5)
    assert len(read_audio(tmp_path / "long.wav", max_seconds=1.0)) == 16000
    with pytest.raises(ValueError, match="rate must be a positive integer"):
        read_audio(tmp_path / "long.wav", rate=0)


def test_a_missing_optional_package_says_how_to_install_it():
    with pytest.raises(ModuleNotFoundError, match=r"speech needs no_such_pkg: pip install elman"):
        require("no_such_pkg")


def test_write_wav_writes_16_bit_pcm_whole(tmp_path):
    x = np.array([0.0, 0.5, -0.5, 1.5, -2.0], np.float32)
    write_wav(tmp_path / "out" / "a.wav", torch.from_numpy(x), 8000)
    data, rate = sf.read(tmp_path / "out" / "a.wav", dtype="int16")
    assert rate == 8000 and sf.info(tmp_path / "out" / "a.wav").subtype == "PCM_16"
    assert data.tolist() == [0, 16384, -16384, 32767, -32768]  # clipped to [-1, 1]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.wav"]  # no temporary left
    with pytest.raises(ValueError, match="1-D"):
        write_wav(tmp_path / "b.wav", np.zeros((4, 2)), 8000)


def test_pcm16_round_trip_and_errors():
    raw = np.array([-32768, -1, 0, 1, 12345, 32767], "<i2").tobytes()
    x = pcm16_to_float(raw)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() < 1
    assert x[0].item() == -1.0 and x[2].item() == 0.0
    assert float_to_pcm16(x) == raw
    assert float_to_pcm16(pcm16_to_float(bytearray(raw))) == raw
    with pytest.raises(ValueError, match="whole 2-byte samples, got 3 bytes"):
        pcm16_to_float(b"abc")
    with pytest.raises(TypeError, match="must be bytes"):
        pcm16_to_float([1, 2])
    with pytest.raises(ValueError, match="finite"):
        float_to_pcm16(np.array([np.nan]))


@pytest.mark.parametrize("colour", ["white", "brown"])
def test_add_noise_hits_the_snr(colour):
    x = sine(300, 16000, 1.0)
    y = add_noise(x, 12.0, np.random.default_rng(0), colour)
    noise = y.astype(np.float64) - x
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(12.0, abs=0.01)
    with pytest.raises(ValueError, match="noise colour must be one of white, brown"):
        add_noise(x, 10.0, np.random.default_rng(0), "pink")


def test_reverberate_keeps_length_and_decays():
    impulse = np.zeros(16000, np.float32)
    impulse[0] = 1.0
    wet = reverberate(impulse, 0.3, 16000, np.random.default_rng(0))
    again = reverberate(impulse, 0.3, 16000, np.random.default_rng(0))
    assert len(wet) == 16000 and np.array_equal(wet, again)
    early, late = np.sum(wet[1:2400] ** 2), np.sum(wet[2400:4800] ** 2)  # 0-0.15 s, 0.15-0.3 s
    assert late < early / 10
    assert np.abs(wet[4800:]).max() < 1e-6  # the room ends at rt60


def test_peak_normalise():
    assert np.max(np.abs(peak_normalise(np.array([0.1, -0.2], np.float32), 0.9))) == pytest.approx(
        0.9
    )
    assert peak_normalise(np.zeros(3, np.float32)).tolist() == [0, 0, 0]


def touch(*paths):
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def test_read_table_csv_resolves_paths_against_its_folder(tmp_path):
    touch(tmp_path / "clips" / "a.wav", tmp_path / "b.flac")
    (tmp_path / "list.csv").write_text(
        'path,transcript,speaker,duration\nclips/a.wav,"hello, world",ann,1.5\n\nb.flac,hi,,\n'
    )
    got = read_table(tmp_path / "list.csv")
    assert got == [
        Utterance(tmp_path / "clips" / "a.wav", "hello, world", "ann", 1.5),
        Utterance(tmp_path / "b.flac", "hi", None, None),
    ]


def test_read_table_tsv_and_a_sniffed_txt(tmp_path):
    touch(tmp_path / "a.wav")
    (tmp_path / "list.tsv").write_text('WAV\tnotes\tText\na.wav\tx\tsay "cheese"\n')
    assert read_table(tmp_path / "list.tsv")[0].text == 'say "cheese"'
    (tmp_path / "list.txt").write_text("file;sentence;client_id\na.wav;one two;c9\n")
    assert read_table(tmp_path / "list.txt") == [Utterance(tmp_path / "a.wav", "one two", "c9")]


@pytest.mark.parametrize(
    "body, message",
    [
        ("path,text\na.wav,ok\nb.wav\n", "line 3: expected 2 fields like the header, got 1"),
        ("path,text\nmissing.wav,ok\n", "line 2: audio file .*missing.wav.* does not exist"),
        ("path,text\na.wav,  \n", "line 2: empty text"),
        ("path,text\n,words\n", "line 2: empty path"),
        ("path,text,duration\na.wav,ok,soon\n", "line 2: duration 'soon' is not a non-negative"),
        ("path,words\na.wav,ok\n", "no text column .* expected one of transcript, text, sentence"),
        ("", "empty; expected a header row"),
    ],
)
def test_read_table_errors_name_file_line_and_problem(tmp_path, body, message):
    touch(tmp_path / "a.wav")
    (tmp_path / "list.csv").write_text(body)
    with pytest.raises(ValueError, match=f"list.csv.*{message}"):
        read_table(tmp_path / "list.csv")


def test_read_table_rejects_text_that_is_not_utf8(tmp_path):
    (tmp_path / "list.csv").write_bytes(b"path,text\n\xff\xfe.wav,x\n")
    with pytest.raises(ValueError, match=r"list\.csv: not UTF-8 text"):
        read_table(tmp_path / "list.csv")


def test_read_librispeech(tmp_path):
    chapter = tmp_path / "19" / "198"
    touch(chapter / "19-198-0000.flac", chapter / "19-198-0001.flac")
    (chapter / "19-198.trans.txt").write_text("19-198-0000 HELLO WORLD\n19-198-0001 A B\n")
    got = read_librispeech(tmp_path)
    assert got == [
        Utterance(chapter / "19-198-0000.flac", "HELLO WORLD", "19"),
        Utterance(chapter / "19-198-0001.flac", "A B", "19"),
    ]
    (chapter / "19-198.trans.txt").write_text("19-198-0000 HELLO\n19-198-0001\n")
    with pytest.raises(ValueError, match=r"19-198.trans.txt line 2: expected 'ID TEXT'"):
        read_librispeech(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no LibriSpeech transcripts"):
        read_librispeech(tmp_path / "empty")


def test_read_common_voice_finds_clips_beside_the_tsv(tmp_path):
    touch(tmp_path / "clips" / "cv_1.mp3")
    (tmp_path / "train.tsv").write_text(
        'client_id\tpath\tsentence\tup_votes\nabc\tcv_1.mp3\t"Quoted" words.\t2\n'
    )
    expected = [Utterance(tmp_path / "clips" / "cv_1.mp3", '"Quoted" words.', "abc")]
    assert read_common_voice(tmp_path / "train.tsv") == expected
    assert read_manifest(tmp_path / "train.tsv") == expected
    (tmp_path / "other.tsv").write_text("client_id\tpath\nabc\tcv_1.mp3\n")
    with pytest.raises(ValueError, match="not a Common Voice TSV, its header lacks sentence"):
        read_common_voice(tmp_path / "other.tsv")


def test_read_manifest_dispatches_and_lists_what_it_accepts(tmp_path):
    touch(tmp_path / "ls" / "1" / "2" / "1-2-0.flac", tmp_path / "a.wav")
    (tmp_path / "ls" / "1" / "2" / "1-2.trans.txt").write_text("1-2-0 HI\n")
    assert read_manifest(tmp_path / "ls")[0].speaker == "1"
    (tmp_path / "t.csv").write_text("audio,transcript\na.wav,yes\n")
    assert read_manifest(tmp_path / "t.csv") == [Utterance(tmp_path / "a.wav", "yes")]
    (tmp_path / "odd.csv").write_text("name,label\na.wav,yes\n")
    with pytest.raises(ValueError, match="names no audio or no text column; expected a Libri"):
        read_manifest(tmp_path / "odd.csv")
    with pytest.raises(ValueError, match="does not exist; expected a LibriSpeech folder"):
        read_manifest(tmp_path / "nothing.tsv")


def test_write_table_round_trip(tmp_path):
    touch(tmp_path / "x" / "0.wav")
    rows = [{"path": "x/0.wav", "transcript": "it's ok", "speaker": "en-us+m1", "duration": 1.25}]
    write_table(tmp_path / "m.tsv", rows, ["path", "transcript", "speaker", "duration", "wpm"])
    assert (tmp_path / "m.tsv").read_text().splitlines()[
        0
    ] == "path\ttranscript\tspeaker\tduration\twpm"
    assert read_table(tmp_path / "m.tsv") == [
        Utterance(tmp_path / "x" / "0.wav", "it's ok", "en-us+m1", 1.25)
    ]
    with pytest.raises(ValueError, match="row 0 column transcript: a tab"):
        write_table(tmp_path / "m.tsv", [{"transcript": "a\tb"}], ["transcript"])
