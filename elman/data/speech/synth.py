"""Speech from text, offline: eSpeak NG (a formant synthesiser) through ctypes, on the library
and voice data that espeakng-loader ships (nothing from the system, nothing downloaded).

The C API is speak_lib.h: ``espeak_Initialize`` in synchronous mode hands the samples (16-bit,
22050 Hz) to a callback; ``espeak_SetVoiceByName`` takes "accent+variant" names such as
"en-us+f2"; ``espeak_SetParameter`` sets the rate (words per minute), pitch and pitch range.

Determinism: eSpeak keeps state from one utterance to the next in static variables that
``espeak_Terminate`` does not reset (the pitch-flutter phase and the automatic gain control
among them), so the same call gives slightly different samples the second time. Each
utterance is therefore synthesised in a forked child of a process that initialised eSpeak and
never spoke: every utterance starts from that same state, and the same text, voice and
parameters give the same samples in any process. (Where fork is missing, as on Windows, it
speaks in-process and repeated calls may differ slightly.)"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from pathlib import Path
from typing import NoReturn

import numpy as np

from elman.data.speech.audio import require

AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: like retrieval, returns when done
INITIALIZE_DONT_EXIT = 0x8000  # report missing data instead of exiting the process
CHARS_UTF8 = 1
POS_CHARACTER = 1
RATE, PITCH, RANGE = 1, 3, 4  # espeak_PARAMETER
WPM = (80, 450)  # espeakRATE_MINIMUM, espeakRATE_MAXIMUM
NOT_ACCENTS = ("en-shaw",)  # English in the Shavian alphabet: a script, not an accent
USUAL_VARIANTS = r"[mf]\d+|klatt\d*|croak|whisperf?"  # listed first
SEED = 1  # eSpeak's breath noise draws random numbers: seeded before each utterance

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, language, NUL)* then NUL
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int]
    lib.espeak_Synth.argtypes += [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p


class _Engine:
    """The process's one initialised eSpeak NG (its state is global in the library)."""

    def __init__(self) -> None:
        loader = require("espeakng_loader")
        self.lib = ctypes.CDLL(loader.get_library_path())
        _declare(self.lib)
        data = loader.get_data_path()
        self.rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), INITIALIZE_DONT_EXIT
        )
        if self.rate <= 0:
            raise RuntimeError(f"eSpeak NG could not start with its data in {data!r}")
        self.version = self.lib.espeak_Info(None).decode()
        self.chunks: list[bytes] = []
        self.callback = _CALLBACK(self._collect)  # kept referenced: ctypes does not
        self.lib.espeak_SetSynthCallback(self.callback)
        self.accents = _english_voices(self.lib)
        self.lookup = {n.lower(): code for code, n in self.accents.items()} | {
            code: code for code in self.accents
        }  # an accent's language code or eSpeak name, lower-cased -> the code
        folder = Path(data) / "voices" / "!v"
        self.variants = sorted((p.name for p in folder.iterdir() if p.is_file()), key=_usual_first)
        self.lock = threading.Lock()

    def _collect(self, wav: ctypes._Pointer, count: int, events: int) -> int:
        if wav and count > 0:
            self.chunks.append(ctypes.string_at(wav, 2 * count))
        return 0  # 0: go on

    def speak_here(self, text: bytes, voice: bytes, params: list[tuple[int, int]]) -> bytes:
        """Synthesise in this process: 16-bit native-endian samples."""
        lib, self.chunks = self.lib, []
        if lib.espeak_SetVoiceByName(voice) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {voice.decode()!r}")
        for parameter, value in params:
            lib.espeak_SetParameter(parameter, value, 0)
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed(ctypes.c_long(SEED))
        if hasattr(os, "fork"):  # POSIX: libc's rand() also feeds the breath noise
            ctypes.CDLL(None).srand(SEED)
        status = lib.espeak_Synth(text, len(text) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        lib.espeak_Synchronize()
        return b"".join(self.chunks)

    def speak(self, text: bytes, voice: bytes, params: list[tuple[int, int]]) -> bytes:
        """Synthesise in a forked child, which starts from the state after initialisation."""
        if not hasattr(os, "fork"):
            with self.lock:
                return self.speak_here(text, voice, params)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            self._child(write, text, voice, params)
        os.close(write)
        try:
            with os.fdopen(read, "rb") as pipe:
                out = pipe.read()
        finally:  # reap the child even when interrupted
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code != 0 or not out.startswith(b"ok\n"):
            reason = out.decode("utf-8", "replace")[:300] or f"exit status {code}"
            raise RuntimeError(f"eSpeak NG failed on {text[:60]!r}: {reason}")
        return out[3:]

    def _child(self, write: int, text: bytes, voice: bytes, params: list) -> NoReturn:
        code = 1
        try:
            out = b"ok\n" + self.speak_here(text, voice, params)
            code = 0
        except BaseException as e:  # the parent reports it; nothing may escape the child
            out = f"{type(e).__name__}: {e}".encode()
        try:
            with os.fdopen(write, "wb") as pipe:
                pipe.write(out)
        finally:
            os._exit(code)


def _english_voices(lib: ctypes.CDLL) -> dict[str, str]:
    """Language code of each English accent (en-us, en-gb-scotland...) -> eSpeak voice name."""
    voices = lib.espeak_ListVoices(None)
    found = {}
    i = 0
    while voices[i]:
        voice = voices[i].contents
        language = ctypes.string_at(voice.languages + 1).decode().lower()
        if (language == "en" or language.startswith("en-")) and language not in NOT_ACCENTS:
            found[language] = voice.identifier.decode().rsplit("/", 1)[-1]
        i += 1
    return dict(sorted(found.items()))


def _usual_first(variant: str) -> tuple[bool, str]:
    return not re.fullmatch(USUAL_VARIANTS, variant), variant.lower()


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


def _int_in(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


class Synth:
    """English speech from eSpeak NG. All instances share the process's one engine (it is
    initialised by the first)."""

    def __init__(self) -> None:
        self._engine = _engine()

    @property
    def sample_rate(self) -> int:
        """The native rate of what ``speak`` returns (22050 Hz)."""
        return self._engine.rate

    @property
    def version(self) -> str:
        return self._engine.version

    def voices(self) -> list[str]:
        """The English accents, by language code: en-029, en-gb, en-gb-scotland, en-us..."""
        return list(self._engine.accents)

    def variants(self) -> list[str]:
        """Voice variants (espeak-ng-data/voices/!v) that change the speaker: m1..m8, f1..f5,
        klatt, croak, whisper..."""
        return list(self._engine.variants)

    def voice_name(self, voice: str, variant: str | None = None) -> str:
        """The canonical name of a voice: "accent+variant" with the accent as its language
        code (eSpeak's "en" is "en-gb"), e.g. "en-gb+f2"; ``voice`` is an accent (a code from
        ``voices`` or eSpeak's own name, any case), optionally with "+variant" in it."""
        accent, variant = self._parse(voice, variant)
        return accent if variant is None else f"{accent}+{variant}"

    def _parse(self, voice: str, variant: str | None) -> tuple[str, str | None]:
        if not isinstance(voice, str):
            raise TypeError(f"voice must be a string such as 'en-us', got {voice!r}")
        accent, plus, named = voice.partition("+")
        if plus and variant is not None:
            raise ValueError(f"voice {voice!r} already names a variant; got variant={variant!r}")
        variant = named if plus else variant
        code = self._engine.lookup.get(accent.lower())
        if code is None:
            raise ValueError(
                f"voice {voice!r} is not an English eSpeak NG voice; expected one of "
                f"{', '.join(self._engine.accents)} (optionally +variant, e.g. en-us+f2)"
            )
        if variant is not None and variant not in self._engine.variants:
            some = ", ".join(self._engine.variants[:24])
            raise ValueError(
                f"variant {variant!r} is not an eSpeak NG voice variant; expected one of "
                f"{some}... ({len(self._engine.variants)} in all, see Synth.variants())"
            )
        return code, variant

    def speak(
        self,
        text: str,
        voice: str = "en-us",
        variant: str | None = None,
        wpm: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
    ) -> tuple[np.ndarray, int]:
        """``text`` spoken: (samples, sample rate), samples 1-D float32 in [-1, 1) at
        ``sample_rate``. ``wpm``: words per minute (80-450); ``pitch``: base pitch (0-100, 50
        normal); ``pitch_range``: intonation (0 monotone - 100, 50 normal)."""
        if not isinstance(text, str) or not text.strip() or "\0" in text:
            raise ValueError(f"text must be a non-empty string without NUL, got {text!r}")
        accent, variant = self._parse(voice, variant)
        name = self._engine.accents[accent] + ("" if variant is None else f"+{variant}")
        params = [
            (RATE, _int_in(wpm, "wpm", *WPM)),
            (PITCH, _int_in(pitch, "pitch", 0, 100)),
            (RANGE, _int_in(pitch_range, "pitch_range", 0, 100)),
        ]
        pcm = self._engine.speak(text.encode("utf-8"), name.encode(), params)
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        return samples, self.sample_rate
