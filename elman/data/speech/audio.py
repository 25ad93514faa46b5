"""Audio in and out: reading any file libsndfile decodes (WAV, FLAC, OGG...) as mono float32 at
one sample rate, writing 16-bit WAV atomically, 16-bit PCM bytes for streaming, and the
augmentations the synthetic corpus applies (additive noise at an SNR, synthetic reverberation).

soundfile and soxr are optional (``pip install elman[speech]``): imported when first needed."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from elman.files import atomic_path

PIP_NAMES = {"espeakng_loader": "espeakng-loader"}
NOISES = ("white", "brown")


def require(module: str) -> ModuleType:
    """Import an optional dependency of the speech extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        name = PIP_NAMES.get(module, module)
        raise ModuleNotFoundError(
            f"speech needs {name}: pip install elman[speech]", name=module
        ) from e


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def read_audio(
    path: str | Path, rate: int = 16000, max_seconds: float | None = None
) -> torch.Tensor:
    """The file's samples as a 1-D float32 tensor in [-1, 1] at ``rate`` Hz: channels averaged
    (downmix), resampled with soxr when the file's rate differs. Errors (ValueError) name the
    path: missing, not decodable, empty, or longer than ``max_seconds`` (checked from the
    header, before decoding)."""
    rate = _positive_int(rate, "rate")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds!r}")
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ValueError(f"audio file {str(path)!r} {what}; expected a WAV, FLAC or OGG file")
    sf = require("soundfile")
    try:
        info = sf.info(str(path))
        seconds = info.frames / info.samplerate if info.samplerate else 0.0
        if info.frames == 0:
            raise ValueError(f"audio file {str(path)!r} is empty (0 samples)")
        if max_seconds is not None and seconds > max_seconds:
            raise ValueError(
                f"audio file {str(path)!r} is {seconds:.2f} s long, over the limit "
                f"max_seconds={max_seconds}"
            )
        data, native = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.SoundFileError as e:
        raise ValueError(
            f"audio file {str(path)!r} could not be decoded ({e}); expected WAV, FLAC or OGG"
        ) from None
    return torch.from_numpy(resample(data.mean(axis=1), native, rate))


def resample(samples: np.ndarray, rate: int, to: int) -> np.ndarray:
    """1-D float32 ``samples`` from ``rate`` to ``to`` Hz (soxr, high quality), kept in
    [-1, 1] (the resampler's filter can overshoot a full-scale input slightly)."""
    samples = np.asarray(samples, dtype=np.float32)
    if rate != to:
        samples = require("soxr").resample(samples, rate, to, quality="HQ")
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)


def write_wav(path: str | Path, samples: torch.Tensor | np.ndarray, rate: int) -> None:
    """Write 1-D float ``samples`` (clipped to [-1, 1]) as 16-bit PCM WAV at ``rate`` Hz; the
    file appears whole or not at all (a temporary file beside it, then renamed)."""
    rate = _positive_int(rate, "rate")
    pcm = np.frombuffer(float_to_pcm16(samples), dtype="<i2")
    sf = require("soundfile")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), pcm, rate, subtype="PCM_16", format="WAV")


def pcm16_to_float(data: bytes | bytearray | memoryview) -> torch.Tensor:
    """Little-endian signed 16-bit PCM bytes -> 1-D float32 tensor in [-1, 1) (x / 32768)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"pcm16 data must be bytes, got {type(data).__name__}")
    if len(data) % 2:
        raise ValueError(f"pcm16 data must hold whole 2-byte samples, got {len(data)} bytes")
    pcm = np.frombuffer(data, dtype="<i2")
    return torch.from_numpy(pcm.astype(np.float32) / 32768.0)


def float_to_pcm16(samples: torch.Tensor | np.ndarray) -> bytes:
    """1-D float samples -> little-endian signed 16-bit PCM bytes (x * 32768, clipped and
    rounded), the inverse of ``pcm16_to_float`` on its outputs."""
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-D (mono), got shape {tuple(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError("samples must be finite, got NaN or infinity")
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


def add_noise(
    samples: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white"
) -> np.ndarray:
    """``samples`` plus noise at ``snr_db`` (signal power over noise power, both averaged over
    the whole clip). "white" is flat; "brown" falls 6 dB per octave (like rumble) above 1/800
    of the sample rate (20 Hz at 16 kHz), flat below it so that it does not drift."""
    x = np.asarray(samples, dtype=np.float64)
    noise = rng.standard_normal(len(x))
    if colour == "brown":
        spectrum = np.fft.rfft(noise)
        spectrum /= np.maximum(np.arange(len(spectrum)), max(1, len(x) // 800))
        noise = np.fft.irfft(spectrum, len(x))
    elif colour != "white":
        raise ValueError(f"noise colour must be one of {', '.join(NOISES)}, got {colour!r}")
    power = np.mean(x**2)
    noise_power = np.mean(noise**2)
    if power == 0 or noise_power == 0:
        return x.astype(np.float32)
    noise *= math.sqrt(power / (noise_power * 10 ** (snr_db / 10)))
    return (x + noise).astype(np.float32)


def reverberate(
    samples: np.ndarray, rt60: float, rate: int, rng: np.random.Generator
) -> np.ndarray:
    """``samples`` convolved with a synthetic room: a direct path, then Gaussian noise decaying
    exponentially to -60 dB after ``rt60`` seconds (Schroeder's late-reverberation model);
    the output keeps the input's length (the tail past it is cut)."""
    x = np.asarray(samples, dtype=np.float64)
    n = max(1, int(rt60 * rate))
    t = np.arange(n) / rate
    ir = rng.standard_normal(n) * np.exp(-3 * math.log(10) * t / rt60) * 0.3
    ir[0] = 1.0  # the direct sound
    ir /= math.sqrt(np.sum(ir**2))
    size = len(x) + n - 1
    fft = 1 << (size - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(x, fft) * np.fft.rfft(ir, fft), fft)[: len(x)]
    return wet.astype(np.float32)


def peak_normalise(samples: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale so that the largest magnitude is ``peak`` (silence stays silence)."""
    x = np.asarray(samples, dtype=np.float32)
    top = float(np.max(np.abs(x))) if len(x) else 0.0
    return x if top == 0 else (x * (peak / top)).astype(np.float32)
