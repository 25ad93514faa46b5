"""Request and response bodies of the HTTP API (pydantic), which also make its OpenAPI
schema. Types are strict: a string where a number belongs is a 422, never coerced; extra
fields are refused, so a misspelt option is an error rather than silently ignored. Size
limits that depend on the server's settings are checked by the handlers.

Every number is bounded here, so none reaches torch or numpy out of range: floats are
finite (an integer too large for a float is refused), and every integer field has a range.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from elman.decode import SEED_MAX, TEMPERATURE

INT_MAX = 2**31 - 1  # counts (lengths, top_k): a server limit or the model bounds them further
OPTION_INT = 2**63 - 1  # a session option's integer: int64, so it can be stored as a tensor


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


Number = float  # finite (allow_inf_nan=False); JSON integers are accepted as floats
Count = Annotated[int, Field(ge=1, le=INT_MAX)]
Pitch = Annotated[int, Field(ge=0, le=127)]  # a MIDI note number


def _option(value: object) -> object:
    """A session option's value (which options a model takes, the model checks): a scalar,
    its numbers bounded as everywhere else; one error naming what is allowed."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int) and abs(value) <= OPTION_INT:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ValueError(
        f"expected a string, true/false, null, a finite number or an integer within "
        f"+-{OPTION_INT}, got {str(value)[:40]}"
    )


OptionValue = Annotated[Any, AfterValidator(_option)]


def _temperature(value: float) -> float:
    """Sampling divides float32 logits by it: 0 means greedy; a positive value too small
    (or, by the bound, too large) would make them infinite and the distribution NaN."""
    if 0 < value < 1e-6:
        raise ValueError(f"expected 0 (greedy) or at least 1e-06, got {value!r}")
    return value


Temperature = Annotated[Number, Field(ge=0, le=1e6), AfterValidator(_temperature)]


class Health(BaseModel):
    status: str
    models: int
    sessions: int


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    task: str
    endpoints: list[str]
    sessions: bool
    session_input: str | None
    parameters: int


class GenerateRequest(Body):
    """Language models: text after ``prompt``. Music: ``length`` steps after an optional
    primer (``frames`` of pitches, or melody ``tokens``), returned as steps and MIDI."""

    prompt: str = ""
    length: int = Field(200, ge=1, le=INT_MAX)
    temperature: Temperature = TEMPERATURE
    top_k: Count | None = None
    top_p: Number | None = Field(None, ge=1e-6, le=1)  # float32 reads a smaller p as 0
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    stream: bool = False
    frames: list[list[Pitch]] | None = None
    tokens: list[str] | None = None


class GenerateResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str | None = None


class ClassifyRequest(Body):
    """Texts, or numeric series as (T, C) lists (a list of numbers for one channel)."""

    texts: list[str] | None = None
    series: list[list[list[Number | None]] | list[Number | None]] | None = None


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class ClassifyResponse(BaseModel):
    predictions: list[Prediction]


class TagRequest(Body):
    """Sentences as word lists, or texts split on whitespace."""

    sentences: list[list[str]] | None = None
    texts: list[str] | None = None


class TagResponse(BaseModel):
    tags: list[list[str]]


class TransduceRequest(Body):
    inputs: list[str] = Field(min_length=1)
    beam: int = Field(1, ge=1, le=64)
    nbest: int = Field(1, ge=1, le=64)
    alpha: Number = Field(0.0, ge=0, le=10)  # length normalisation: n**alpha stays finite


class Output(BaseModel):
    output: str
    logprob: float


class TransduceResponse(BaseModel):
    outputs: list[list[Output]]


class TranscribeRequest(Body):
    """Speech: ``audio`` items, each base64 of an audio file (``format`` "file": WAV, FLAC,
    OGG..., any rate, channels averaged) or of raw 16-bit little-endian mono PCM at the
    model's ``rate`` (model info) ("pcm16"). ``beam`` 1 decodes greedily, wider by prefix
    beam search; ``timings`` adds each word's start and end in seconds."""

    audio: list[str]
    format: Literal["file", "pcm16"] = "file"
    beam: int = Field(1, ge=1, le=64)
    timings: bool = False


class Word(BaseModel):
    word: str
    start: float
    end: float


class Transcript(BaseModel):
    text: str
    words: list[Word] | None = None


class TranscribeResponse(BaseModel):
    transcripts: list[Transcript]


class ForecastRequest(Body):
    """The series so far: ``values``; for models with calendar features also the first
    value's time ``start`` (ISO) and the grid's pandas ``freq`` (as in training);
    ``series``: which of the model's series it is (any name for a model of one series)."""

    values: list[Number] = Field(min_length=1)
    series: str = ""
    start: str | None = None
    freq: str | None = None


class ForecastResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    point: list[float]
    quantiles: dict[str, list[float]]


class SessionRequest(Body):
    """Open a session of ``model``; ``options`` depend on the task (see model info):
    ``top_k`` for next-token lists, ``series`` for forecasters, ``source`` for seq2seq,
    ``format`` ("pcm16" or "file") and ``timings`` for speech."""

    model: str
    options: dict[str, OptionValue] = Field(default_factory=dict)


class SessionInfo(BaseModel):
    id: str
    model: str
    task: str
    steps: int
    input: str | None


class StepRequest(Body):
    """New observations for a session: exactly one of the fields, the one its model reads
    (``session_input`` in model info): characters or words as ``text``, numbers as
    ``values``, feature or pitch lists as ``frames``, symbols as ``tokens``, sound as
    base64 ``audio`` (in the session's ``format``)."""

    text: str | None = None
    values: list[Number] | None = None
    frames: list[list[Number]] | None = None
    tokens: list[str] | None = None
    audio: str | None = None


class StepResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    steps: int


class ErrorBody(BaseModel):
    detail: Any


__all__ = [
    "ClassifyRequest",
    "ClassifyResponse",
    "ErrorBody",
    "ForecastRequest",
    "ForecastResponse",
    "GenerateRequest",
    "GenerateResponse",
    "Health",
    "ModelInfo",
    "SessionInfo",
    "SessionRequest",
    "StepRequest",
    "StepResponse",
    "TagRequest",
    "TagResponse",
    "TranscribeRequest",
    "TranscribeResponse",
    "Transcript",
    "TransduceRequest",
    "TransduceResponse",
    "Word",
]
