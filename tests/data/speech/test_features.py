"""Speech features: the mel filterbank, log-mel and MFCC against librosa, the chain's shapes
and lengths, SpecAugment's masks, and streaming equal to the offline run."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from elman.data.speech.augment import SpecAugment, spec_augment
from elman.data.speech.features import (
    FeatureConfig,
    FeatureStats,
    FeatureStream,
    features,
    frames_for,
    log_mel,
    mel_filterbank,
    mfcc,
    seconds_per_frame,
    stack_frames,
)

RATE = 16000


def chirp_and_tone(seconds: float = 0.5, dtype=torch.float64) -> torch.Tensor:
    """A 100 Hz -> 6 kHz linear chirp plus a 440 Hz tone and a little seeded noise."""
    t = torch.arange(int(seconds * RATE), dtype=torch.float64) / RATE
    sweep = torch.sin(2 * torch.pi * (100 * t + (6000 - 100) / (2 * seconds) * t * t))
    noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(0), dtype=t.dtype)
    return (0.5 * sweep + 0.3 * torch.sin(2 * torch.pi * 440 * t) + 1e-3 * noise).to(dtype)


@pytest.mark.parametrize(
    ("n_fft", "n_mels", "rate", "fmin", "fmax", "htk"),
    [(512, 80, 16000, 0.0, None, False), (400, 40, 8000, 20.0, 3800.0, False),
     (1024, 64, 22050, 0.0, 8000.0, True), (256, 23, 16000, 300.0, None, True)],
)  # fmt: skip
def test_mel_filterbank_matches_librosa(n_fft, n_mels, rate, fmin, fmax, htk):
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(n_fft, n_mels, rate, fmin, fmax, htk=htk)
    ref = librosa.filters.mel(
        sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm="slaney"
    )
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    assert torch.allclose(ours, torch.from_numpy(ref), rtol=0, atol=1e-5)


@pytest.mark.parametrize("pad", ["reflect", "constant"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_mel_matches_librosa(pad, dtype):
    librosa = pytest.importorskip("librosa")
    x = chirp_and_tone(dtype=dtype)
    config = FeatureConfig(preemphasis=0, normalise="none", pad=pad)
    ours = log_mel(x, config)
    ref = librosa.feature.melspectrogram(
        y=x.double().numpy(), sr=RATE, n_fft=512, hop_length=160, win_length=400,
        window="hann", center=True, pad_mode=pad, power=2.0, n_mels=80,
    )  # fmt: skip
    ref = torch.from_numpy(ref).T  # (frames, n_mels)
    assert ours.shape == ref.shape == (frames_for(len(x), config), 80)
    assert ours.dtype == dtype
    loud = ref > 1e-4 * ref.max()  # quiet bands are rounding noise in float32
    assert loud.float().mean() > 0.1  # the chirp and the tone cover a sixth of the bands
    err = (ours.double() - torch.log(ref + 1e-6))[loud].abs().max()
    assert err < 1e-4


def test_mfcc_is_librosas_orthonormal_dct_of_the_same_log_mel():
    # compares the DCT only: librosa's own chain takes dB, ours keeps natural-log features
    librosa = pytest.importorskip("librosa")
    config = FeatureConfig(kind="mfcc", n_mfcc=13, preemphasis=0, normalise="none")
    x = chirp_and_tone()
    lm = log_mel(x, config)
    ref = librosa.feature.mfcc(S=lm.T.numpy(), n_mfcc=13, dct_type=2, norm="ortho", lifter=0)
    assert torch.allclose(mfcc(x, config), torch.from_numpy(ref).T, atol=1e-9)


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("n", [0, 399, 400, 1600, 8001])
def test_frames_for_counts_what_features_makes(streaming, n):
    for stack in (1, 3):
        config = FeatureConfig(stack=stack, streaming=streaming, pad="constant")
        x = torch.randn(n, generator=torch.Generator().manual_seed(n))
        out = features(x, config)
        assert out.shape == (frames_for(n, config), config.dim)
    assert frames_for(16000, FeatureConfig()) == 101  # centred: 1 + n // hop
    assert frames_for(16000, FeatureConfig(streaming=True)) == 98  # 1 + (n - win) // hop


def test_chain_normalises_and_stacks():
    x = chirp_and_tone(dtype=torch.float32)
    config = FeatureConfig(kind="mfcc", n_mfcc=20)
    f = features(x, config)
    assert torch.allclose(f.mean(0), torch.zeros(20), atol=1e-4)
    assert torch.allclose(f.std(0, correction=0), torch.ones(20), atol=1e-3)
    stacked = features(x, replace(config, stack=4))
    assert stacked.shape == (f.shape[0] // 4, 80)
    assert torch.equal(stacked[1], f[4:8].reshape(-1))  # frames 4..7 side by side
    assert torch.equal(stacked, stack_frames(f, 4))  # what to call after spec_augment
    assert seconds_per_frame(replace(config, stack=4)) == pytest.approx(0.04)
    batch = torch.stack([x, x.flip(0)])
    assert torch.allclose(features(batch, config)[1], features(x.flip(0), config), atol=1e-5)


def test_preemphasis_changes_only_what_it_should():
    x = chirp_and_tone()
    plain = features(x, FeatureConfig(preemphasis=0, normalise="none"))
    shifted = features(x, FeatureConfig(preemphasis=0.97, normalise="none"))
    emphasised = torch.cat([x[:1], x[1:] - 0.97 * x[:-1]])
    assert torch.allclose(shifted, log_mel(emphasised, FeatureConfig()))
    assert not torch.allclose(plain, shifted)


def test_global_stats_fit_and_normalise():
    raw = FeatureConfig(normalise="none", n_mels=8)
    xs = [chirp_and_tone(0.3), 0.5 * chirp_and_tone(0.2)]
    stats = FeatureStats.fit(xs, FeatureConfig(normalise="global", n_mels=8))
    together = torch.cat([features(x, raw) for x in xs])
    assert torch.allclose(torch.tensor(stats.mean, dtype=torch.float64), together.mean(0))
    z = features(xs[0], replace(raw, normalise="global"), stats)
    assert torch.allclose(
        z, (features(xs[0], raw) - together.mean(0)) / together.std(0, correction=0)
    )
    with pytest.raises(ValueError, match="normalise='global' needs stats"):
        features(xs[0], replace(raw, normalise="global"))
    with pytest.raises(ValueError, match="stats describe 8 features, expected 80"):
        features(xs[0], FeatureConfig(normalise="global"), stats)
    with pytest.raises(ValueError, match="stats are only used with normalise='global'"):
        features(xs[0], raw, stats)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kind": "plp"}, "kind must be one of fbank, mfcc; got 'plp'"),
     ({"n_mels": 0}, "n_mels must be an integer >= 1, got 0"),
     ({"kind": "mfcc", "n_mels": 10, "n_mfcc": 13}, "n_mfcc must be <= n_mels"),
     ({"n_fft": 256}, "n_fft must be an integer >= 400, got 256"),
     ({"fmax": 9000}, r"fmax must be a number in \(fmin, 8000\]"),
     ({"fmin": 500, "fmax": 400}, r"fmax must be above fmin \(500\), got 400"),
     ({"preemphasis": 1.0}, r"preemphasis must be a number in \[0, 1\), got 1.0"),
     ({"normalise": "batch"}, "normalise must be one of utterance, global, none"),
     ({"stack": 0}, "stack must be an integer >= 1"),
     ({"hop_ms": 0}, "hop_ms must be a number giving >= 1 sample, got 0"),
     ({"pad": "edge"}, "pad must be one of reflect, constant")],
)  # fmt: skip
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureConfig(**kwargs)


def test_bad_samples_are_refused():
    with pytest.raises(TypeError, match="samples must be a float tensor"):
        features(torch.zeros(1000, dtype=torch.int16), FeatureConfig())
    with pytest.raises(ValueError, match="reflect padding needs more than n_fft/2 = 256"):
        features(torch.zeros(200), FeatureConfig())
    assert features(torch.zeros(200), FeatureConfig(pad="constant")).shape == (2, 80)


def bands(flags: torch.Tensor) -> list[tuple[int, int]]:
    """Runs of True in a 1-D bool tensor as (start, end) pairs."""
    runs, start = [], None
    for i, v in enumerate([*flags.tolist(), False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i))
            start = None
    return runs


@pytest.mark.parametrize("seed", range(6))
def test_spec_augment_masks_full_bands_within_limits(seed):
    config = SpecAugment(freq_masks=2, freq_width=15, time_masks=2, time_width=40)
    feats = torch.rand(120, 80) + 1  # nothing is 0 before masking
    out = spec_augment(feats, config, torch.Generator().manual_seed(seed))
    zero = out == 0
    cols, rows = zero.all(0), zero.all(1)
    assert torch.equal(zero, cols[None, :] | rows[:, None])  # full-width bands only
    assert torch.equal(out[~zero], feats[~zero])
    assert len(bands(cols)) <= 2 and int(cols.sum()) <= 2 * 15
    assert len(bands(rows)) <= 2 and int(rows.sum()) <= 2 * min(40, int(0.2 * 120))
    again = spec_augment(feats, config, torch.Generator().manual_seed(seed))
    assert torch.equal(out, again)


def test_spec_augment_batches_lengths_and_edge_cases():
    config = SpecAugment(freq_masks=0, time_masks=3, time_width=100, time_fraction=1.0)
    feats = torch.rand(3, 50, 4) + 1
    out = spec_augment(feats, config, torch.Generator().manual_seed(1), torch.tensor([50, 10, 0]))
    assert torch.equal(out[1, 10:], feats[1, 10:])  # padding is never masked
    assert torch.equal(out[2], feats[2])  # an empty utterance stays as it was
    assert not torch.equal(out[0], out[1])  # each utterance draws its own masks
    assert spec_augment(torch.zeros(0, 80), SpecAugment()).shape == (0, 80)
    assert spec_augment(torch.zeros(0, 5, 80), SpecAugment()).shape == (0, 5, 80)
    off = SpecAugment(freq_masks=0, time_masks=0)
    assert torch.equal(spec_augment(feats, off), feats)
    with pytest.raises(ValueError, match=r"time_fraction must be a number in \[0, 1\], got 2"):
        SpecAugment(time_fraction=2)


def stream_in_chunks(x: torch.Tensor, stream: FeatureStream, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    outs, at = [], 0
    while at < len(x):
        n = int(torch.randint(0, 700, (1,), generator=g))
        outs.append(stream.feed(x[at : at + n]))
        at += n
    return torch.cat(outs)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("kind", "stack", "hop_ms"), [("fbank", 1, 10.0), ("mfcc", 3, 10.0), ("fbank", 2, 30.0)]
)
def test_stream_equals_offline_for_any_chunking(seed, kind, stack, hop_ms):
    x = chirp_and_tone(0.4, torch.float32)
    config = FeatureConfig(
        kind=kind, stack=stack, hop_ms=hop_ms, streaming=True, normalise="global"
    )
    stats = FeatureStats.fit([chirp_and_tone(0.2)], config)
    offline = features(x, config, stats)
    stream = FeatureStream(config, stats)
    streamed = stream_in_chunks(x, stream, seed)
    assert streamed.shape == offline.shape == (frames_for(len(x), config), config.dim)
    assert torch.allclose(streamed, offline, atol=1e-4)
    stream.reset()
    assert torch.allclose(stream_in_chunks(x, stream, seed + 10), offline, atol=1e-4)


def test_stream_refuses_what_cannot_stream():
    with pytest.raises(ValueError, match="FeatureStream needs a config with streaming=True"):
        FeatureStream(FeatureConfig(normalise="none"))
    with pytest.raises(ValueError, match="FeatureStream needs normalise='global'"):
        FeatureStream(FeatureConfig(streaming=True))
    with pytest.raises(ValueError, match="chunk must be 1-D samples"):
        FeatureStream(FeatureConfig(streaming=True, normalise="none")).feed(torch.zeros(2, 9))


def test_spec_augment_refuses_mismatched_lengths():
    with pytest.raises(
        ValueError, match=r"lengths must hold one length per utterance \(2\), got 3"
    ):
        spec_augment(torch.ones(2, 5, 4), SpecAugment(), lengths=torch.tensor([5, 5, 5]))
