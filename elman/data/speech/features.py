"""Acoustic features: log-mel filterbanks and MFCC from samples, normalisation, frame
stacking and a streaming extractor (SpecAugment: ``elman.data.speech.augment``).

    pre-emphasis:  y[n] = x[n] - a·x[n-1]                 (x[-1] = 0)
    frames:        Y_t[k] = Σ_n w[n] y[t·hop + n] e^{-2πikn/N}   (w: periodic Hann, N = n_fft)
    power:         P_t[k] = |Y_t[k]|²
    log-mel:       L_t[m] = ln(Σ_k M[m, k] P_t[k] + 1e-6)  (M: Slaney mel filterbank)
    MFCC:          C_t[j] = Σ_m D[j, m] L_t[m]             (D: orthonormal DCT-II, j < n_mfcc)
    normalise:     z_t = (f_t - μ) / σ                    (μ, σ per feature: utterance or global)
    stack:         s_u = [z_{ku}; ...; z_{ku+k-1}]        (k frames in one, hop × k)

Offline frames are centred (frame t covers samples around t·hop, padded at the edges like
``torch.stft(center=True)``); ``streaming=True`` uses left-aligned frames instead (frame t
covers [t·hop, t·hop + win)), which ``FeatureStream`` can compute chunk by chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

import torch
from torch import Tensor

from elman.fields import option
from elman.nn.config import _choice  # the layers' own check, same message

KINDS = ("fbank", "mfcc")
NORMALISE = ("utterance", "global", "none")
PADS = ("reflect", "constant")
LOG_OFFSET = 1e-6  # ln(x + 1e-6): silence stays finite, about -13.8


def _integer(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _number(name: str, value: object, low: float, high: float, what: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    if not (ok and low <= value <= high):
        raise ValueError(f"{name} must be a number {what}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class FeatureConfig:
    """How samples become feature frames (the equations are in the module's docstring)."""

    rate: int = option(16000, "sample rate of the audio in Hz")
    kind: str = option("fbank", "log-mel filterbank or MFCC features", choices=KINDS)
    n_mels: int = option(80, "mel bands")
    n_mfcc: int = option(13, "cepstral coefficients kept (kind=mfcc)")
    win_ms: float = option(25.0, "window length in milliseconds")
    hop_ms: float = option(10.0, "hop between frames in milliseconds")
    n_fft: int | None = option(None, "FFT size (default: next power of two >= window)")
    fmin: float = option(0.0, "lowest mel band edge in Hz")
    fmax: float | None = option(None, "highest mel band edge in Hz (default: rate / 2)")
    preemphasis: float = option(0.97, "pre-emphasis coefficient a (0: none)")
    normalise: str = option("utterance", "mean/variance per feature", choices=NORMALISE)
    stack: int = option(1, "frames stacked into one, hop multiplied by it (1: none)")
    streaming: bool = option(False, "left-aligned frames, as FeatureStream computes them")
    pad: str = option("reflect", "edge padding of centred frames", choices=PADS)

    def __post_init__(self) -> None:
        _integer("rate", self.rate, 1)
        _choice("kind", self.kind, KINDS)
        _integer("n_mels", self.n_mels, 1)
        _integer("n_mfcc", self.n_mfcc, 1)
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc must be <= n_mels ({self.n_mels}), got {self.n_mfcc}")
        _number("win_ms", self.win_ms, 1000 / self.rate, 1e4, "giving >= 1 sample")
        _number("hop_ms", self.hop_ms, 1000 / self.rate, 1e4, "giving >= 1 sample")
        if self.n_fft is not None:
            _integer("n_fft", self.n_fft, self.window)
        top = nyquist = self.rate / 2
        _number("fmin", self.fmin, 0, nyquist, f"in [0, {nyquist:g}] (rate / 2)")
        if self.fmax is not None:
            _number("fmax", top := self.fmax, 0, nyquist, f"in (fmin, {nyquist:g}]")
        if top <= self.fmin:
            raise ValueError(f"fmax must be above fmin ({self.fmin:g}), got {top:g}")
        _number("preemphasis", self.preemphasis, 0, 0.999999, "in [0, 1)")
        _choice("normalise", self.normalise, NORMALISE)
        _integer("stack", self.stack, 1)
        if not isinstance(self.streaming, bool):
            raise ValueError(f"streaming must be True or False, got {self.streaming!r}")
        _choice("pad", self.pad, PADS)

    @property
    def window(self) -> int:  # samples
        return max(1, round(self.rate * self.win_ms / 1000))

    @property
    def hop(self) -> int:  # samples between unstacked frames
        return max(1, round(self.rate * self.hop_ms / 1000))

    @property
    def fft(self) -> int:
        return self.n_fft if self.n_fft is not None else 1 << (self.window - 1).bit_length()

    @property
    def base_dim(self) -> int:  # features per unstacked frame: what FeatureStats describes
        return self.n_mels if self.kind == "fbank" else self.n_mfcc

    @property
    def dim(self) -> int:  # features per output frame
        return self.base_dim * self.stack


@dataclass(frozen=True)
class FeatureStats:
    """Global per-feature mean μ and standard deviation σ (``normalise="global"``), fitted on
    training utterances; plain tuples so they travel in a checkpoint's JSON metadata."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if not len(self.mean) == len(self.std) > 0:
            n, m = len(self.mean), len(self.std)
            raise ValueError(f"mean and std must have one length > 0, got {n} and {m}")
        if not all(math.isfinite(v) for v in self.mean) or not min(self.std) > 0:
            raise ValueError(f"stats must be finite with std > 0, got min std {min(self.std)}")

    @classmethod
    def fit(cls, utterances: Iterable[Tensor], config: FeatureConfig) -> FeatureStats:
        """μ, σ over every frame of ``utterances`` (samples (T,) each) under ``config``."""
        raw = replace(config, normalise="none", stack=1)
        n, total, square = 0, torch.zeros(config.base_dim, dtype=torch.float64), 0.0
        for x in utterances:
            f = features(x, raw).double().reshape(-1, config.base_dim)
            n, total, square = n + f.shape[0], total + f.sum(0), square + (f * f).sum(0)
        if n == 0:
            raise ValueError("FeatureStats.fit needs at least one frame of training audio")
        mean = total / n
        std = (square / n - mean * mean).clamp_min(0).sqrt().clamp_min(1e-5)
        return cls(tuple(mean.tolist()), tuple(std.tolist()))


def mel_filterbank(
    n_fft: int,
    n_mels: int,
    rate: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
) -> Tensor:
    """(n_mels, n_fft//2 + 1) triangles between mel-spaced edges f_{m-1}, f_m, f_{m+1}, each
    scaled by 2 / (f_{m+1} - f_{m-1}) (Slaney's equal area; librosa's defaults).

    Slaney mel: m(f) = 3f/200 below 1 kHz, 15 + 27·ln(f/1000)/ln(6.4) above; HTK mel:
    m(f) = 2595·log10(1 + f/700)."""
    return _filterbank(n_fft, n_mels, rate, fmin, fmax, htk).float().clone()


@lru_cache(maxsize=16)
def _filterbank(n_fft, n_mels, rate, fmin, fmax, htk) -> Tensor:
    edges = (_to_mel(fmin, htk), _to_mel(fmax or rate / 2, htk))
    f = _to_hz(torch.linspace(*edges, n_mels + 2, dtype=torch.float64), htk)
    bins = torch.linspace(0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    ramps, gap = f[:, None] - bins[None, :], f.diff()[:, None]  # (n_mels + 2, F), (n_mels + 1, 1)
    weights = torch.minimum(-ramps[:-2] / gap[:-1], ramps[2:] / gap[1:]).clamp_min(0)
    return weights * (2.0 / (f[2:] - f[:-2]))[:, None]


def _to_mel(hz: float, htk: bool) -> float:
    if htk:
        return 2595.0 * math.log10(1.0 + hz / 700.0)
    return 3 * hz / 200 if hz < 1000 else 15 + math.log(hz / 1000) / (math.log(6.4) / 27)


def _to_hz(mel: Tensor, htk: bool) -> Tensor:
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    log = 1000 * torch.exp((math.log(6.4) / 27) * (mel - 15))
    return torch.where(mel >= 15, log, 200 * mel / 3)


def _samples(samples: Tensor) -> Tensor:
    x = torch.as_tensor(samples)
    if not x.is_floating_point() or x.ndim not in (1, 2):
        raise TypeError(f"samples must be a float tensor (T,) or (B, T), got {x.dtype} {x.shape}")
    return x


def power_spectrum(samples: Tensor, config: FeatureConfig) -> Tensor:
    """P (..., frames, n_fft//2 + 1) of samples (..., T), framed as ``config`` says."""
    x = _samples(samples)
    n, win, hop = x.shape[-1], config.window, config.hop
    window = torch.hann_window(win, periodic=True, dtype=x.dtype, device=x.device)
    if _unstacked(n, config) == 0:  # the FFTs refuse empty input
        return x.new_zeros(*x.shape[:-1], 0, config.fft // 2 + 1)
    if config.streaming:
        spec = torch.fft.rfft(x.unfold(-1, win, hop) * window, n=config.fft)
    elif config.pad == "reflect" and n <= config.fft // 2:
        half = config.fft // 2
        raise ValueError(f"reflect padding needs more than n_fft/2 = {half} samples, got {n}")
    else:
        spec = torch.stft(x, config.fft, hop, win, window, pad_mode=config.pad, return_complex=True)
        spec = spec.transpose(-1, -2)  # center=True: frame t is centred on sample t·hop
    return torch.view_as_real(spec).square().sum(-1)  # |Y|² without a square root


def log_mel(samples: Tensor, config: FeatureConfig) -> Tensor:
    """L (frames, n_mels) or (B, frames, n_mels) of samples (T,) or (B, T); no pre-emphasis
    (``features`` adds it)."""
    p = power_spectrum(samples, config)
    m = _filterbank(config.fft, config.n_mels, config.rate, config.fmin, config.fmax, False)
    return torch.log(p @ m.to(p.dtype).T + LOG_OFFSET)


def dct_matrix(n_mels: int, n_mfcc: int) -> Tensor:
    """D (n_mfcc, n_mels): D[j, m] = √(2/M)·cos(πj(2m+1)/2M), row 0 times 1/√2 (orthonormal
    DCT-II, scipy's ``dct(norm="ortho")``)."""
    m = torch.arange(n_mels, dtype=torch.float64)
    j = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    d = math.sqrt(2 / n_mels) * torch.cos(math.pi * j * (2 * m + 1) / (2 * n_mels))
    d[0] /= math.sqrt(2)
    return d


def mfcc(samples: Tensor, config: FeatureConfig) -> Tensor:
    """C (..., frames, n_mfcc): the DCT of ``log_mel`` (natural log, not librosa's dB)."""
    lm = log_mel(samples, config)
    return lm @ dct_matrix(config.n_mels, config.n_mfcc).to(lm.dtype).T


def stack_frames(feats: Tensor, k: int) -> Tensor:
    """(..., frames, d) -> (..., frames // k, k·d): k consecutive frames side by side; a last
    incomplete group is dropped (as a stream would never complete it)."""
    n = feats.shape[-2] // k
    return feats[..., : n * k, :].reshape(*feats.shape[:-2], n, k * feats.shape[-1])


def _check_stats(config: FeatureConfig, stats: FeatureStats | None) -> None:
    if config.normalise == "global" and stats is None:
        raise ValueError("normalise='global' needs stats (FeatureStats.fit on training audio)")
    if config.normalise != "global" and stats is not None:
        raise ValueError(f"stats are only used with normalise='global', not {config.normalise!r}")
    if stats is not None and len(stats.mean) != config.base_dim:
        raise ValueError(f"stats describe {len(stats.mean)} features, expected {config.base_dim}")


def _normalised(f: Tensor, config: FeatureConfig, stats: FeatureStats | None) -> Tensor:
    if config.normalise == "utterance" and f.shape[-2]:
        std = f.std(-2, correction=0, keepdim=True).clamp_min(1e-5)
        return (f - f.mean(-2, keepdim=True)) / std
    if config.normalise == "global":
        return (f - f.new_tensor(stats.mean)) / f.new_tensor(stats.std)
    return f


def _preemphasis(x: Tensor, a: float, previous: Tensor | float = 0.0) -> Tensor:
    if a == 0 or x.shape[-1] == 0:
        return x
    first = torch.as_tensor(previous, dtype=x.dtype).expand(*x.shape[:-1], 1)
    return x - a * torch.cat([first, x[..., :-1]], dim=-1)


def _spectral(y: Tensor, config: FeatureConfig) -> Tensor:
    return log_mel(y, config) if config.kind == "fbank" else mfcc(y, config)


def features(samples: Tensor, config: FeatureConfig, stats: FeatureStats | None = None) -> Tensor:
    """The whole chain: samples (T,) or (B, T) -> (frames_for(T), config.dim) (batched:
    (B, frames, dim)). ``stats``: the global μ, σ, only with ``normalise="global"``."""
    _check_stats(config, stats)
    f = _spectral(_preemphasis(_samples(samples), config.preemphasis), config)
    f = _normalised(f, config, stats)
    return f if config.stack == 1 else stack_frames(f, config.stack)


def frames_for(n_samples: int, config: FeatureConfig) -> int:
    """Frames that ``features`` makes of ``n_samples`` samples (CTC needs >= the labels)."""
    return _unstacked(n_samples, config) // config.stack


def _unstacked(n: int, config: FeatureConfig) -> int:
    if config.streaming:
        return 0 if n < config.window else 1 + (n - config.window) // config.hop
    return 1 + n // config.hop if n > 0 else 0


def seconds_per_frame(config: FeatureConfig) -> float:
    """Time between consecutive output frames (stacking included)."""
    return config.hop * config.stack / config.rate


class FeatureStream:
    """Features of audio arriving in chunks: each ``feed`` returns the frames completed so
    far, and the concatenation of its outputs equals ``features`` of the whole audio under
    the same config. Needs ``streaming=True`` (left-aligned frames: a centred frame would
    wait for samples past its end) and fixed statistics (``normalise="global"`` with
    ``stats``, or ``"none"``): per-utterance statistics are not known until the end."""

    def __init__(self, config: FeatureConfig, stats: FeatureStats | None = None) -> None:
        if not config.streaming:
            raise ValueError("FeatureStream needs a config with streaming=True, got False")
        if config.normalise == "utterance":
            raise ValueError("FeatureStream needs normalise='global' (fixed stats) or 'none'")
        _check_stats(config, stats)
        self.config, self.stats = config, stats
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        self._last: Tensor | float = 0.0  # the previous raw sample, for pre-emphasis
        self._samples = torch.zeros(0)  # pre-emphasised samples not yet framed away
        self._skip = 0  # samples between frames, when the hop is longer than the window
        self._frames = torch.zeros(0, self.config.base_dim)  # frames waiting for a full stack

    def feed(self, chunk: Tensor) -> Tensor:
        """chunk (n,) of samples -> (frames, config.dim) newly completed (maybe 0)."""
        x, c = _samples(chunk), self.config
        if x.ndim != 1:
            raise ValueError(f"chunk must be 1-D samples (n,), got shape {tuple(x.shape)}")
        y, skip = _preemphasis(x, c.preemphasis, self._last), min(self._skip, len(x))
        self._last, self._skip = x[-1].clone() if len(x) else self._last, self._skip - skip
        buf = torch.cat([self._samples.to(x), y[skip:]])
        n = _unstacked(len(buf), c)
        f = _normalised(_spectral(buf[: (n - 1) * c.hop + c.window if n else 0], c), c, self.stats)
        self._samples = buf[n * c.hop :].clone()  # the caller may reuse its chunk's memory
        self._skip += max(0, n * c.hop - len(buf))
        f = torch.cat([self._frames.to(f), f])
        done = f.shape[0] // c.stack * c.stack
        self._frames = f[done:]
        return stack_frames(f[:done], c.stack)
