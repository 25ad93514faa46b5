"""Stateful streams over trained recurrent models: feed one step or a chunk at a time, keep
the state between calls, and get exactly what the whole-sequence run gives at those steps.

Every kind of stream has one interface, so a server can treat them alike:

    stream = open_stream(model_or_run_dir, **options)     # or the class itself
    result = stream.feed(chunk)                           # one result row per step fed
    data = stream.to_bytes()                              # safetensors bytes
    stream = restore_stream(model_or_run_dir, data)       # or Cls.from_bytes(model, data)
    results = feed_together(streams, chunks)              # one batched pass, same results
    stream.steps, stream.model                            # steps read so far, the network

Kinds (class: model it takes; chunk fed -> result, one row per step):

- ``Stream``: a language model (``RecurrentLM``) or a music model (``MusicModel``);
  (T,) token ids or (T, P) frames -> (T, V) log-probabilities of the next step (per-pitch
  log-sigmoids for piano rolls).
- ``ForecastStream``: a loaded forecaster (``forecast_runs.Trained``) and a series name;
  (T,) observed values -> ``NextSteps``: the next value's point (T,) and quantiles (T, L)
  in the series' units, each observed value's anomaly score (T,) and flag (T,).
- ``ClassifyStream``: a ``Classifier`` or ``SequenceClassifier``; (T,) token ids or (T, C)
  values -> (T, K) class probabilities of the sequence so far.
- ``DecoderStream``: a ``Seq2Seq`` opened on a source; (T,) target token ids (the start
  token first) -> (T, V) log-probabilities of the next target token.

``feed_together`` takes streams of one kind and one model with chunks of one length (any
histories, any series, any sources). Results equal the whole-sequence run: the language
model's forward, ``Forecaster.step_parameters`` over the series, ``predict`` on each
prefix, the teacher-forced decoder. What reads the future cannot stream and is refused
with a ValueError saying why: bidirectional layers (every tagger, bidirectional
classifiers), the classifier's convolutional branch, direct-mode forecasters.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.tasks.classify.stream import ClassifyStream
from elman.tasks.forecast.stream import ForecastStream, NextSteps
from elman.tasks.seq2seq.stream import DecoderStream
from elman.tasks.streaming import (
    State,
    as_model_state,
    as_tuple,
    check_together,
    pack,
    recurrent_layer,
    recurrent_state,
    row,
    stack,
    take,
    unpack,
)


def _log_probs(model: nn.Module, out: Tensor) -> Tensor:
    """Outputs (T, V) as log-probabilities: log-softmax over tokens, or per-pitch
    log-sigmoid for piano-roll models (whose pitches are independent Bernoullis)."""
    if getattr(model, "embed", True) is None:  # a piano-roll model: a sigmoid per pitch
        return F.logsigmoid(out)
    return F.log_softmax(out, dim=-1)


class Stream:
    """One sequence fed piece by piece through a language or music ``model`` (eval mode, no
    gradients): a model whose ``forward(x, state=...)`` takes a batch-first chunk and
    returns (outputs, state)."""

    def __init__(self, model: nn.Module, state: State | None = None) -> None:
        self.model, self.rnn = model, recurrent_layer(model)
        self.state: State | None = state
        self.steps = 0

    def zero_state(self, batch: int = 1) -> State:
        return self.rnn.zero_state(batch)

    @torch.no_grad()
    def feed(self, chunk: Tensor | Sequence[int]) -> Tensor:
        """Feed steps (T,) token ids or (T, F) frames; returns (T, V) log-probabilities of the
        next step after each one."""
        return Stream.feed_together([self], [chunk])[0]

    @classmethod
    @torch.no_grad()
    def feed_together(
        cls, streams: Sequence[Stream], chunks: Sequence[Tensor | Sequence[int]]
    ) -> list[Tensor]:
        """Feed one chunk to each stream, all through one batched forward pass (chunks of one
        shape, streams of one model). Each stream's state and result are as if fed alone."""
        check_together(streams, chunks)
        xs = [torch.as_tensor(x) for x in chunks]
        for x in xs:
            if x.dim() not in (1, 2) or x.shape[0] == 0:
                raise ValueError(
                    f"chunk: expected (steps,) ids or (steps, features), got shape {tuple(x.shape)}"
                )
        if len({x.shape for x in xs}) != 1:
            raise ValueError(
                f"chunks: must share one shape, got {sorted({tuple(x.shape) for x in xs})}"
            )
        model, rnn = streams[0].model.eval(), streams[0].rnn
        states = stack([s.state if s.state is not None else s.zero_state() for s in streams])
        out, new = model(torch.stack(xs), state=as_model_state(rnn, states))
        for i, s in enumerate(streams):
            s.state, s.steps = row(as_tuple(new), i), s.steps + xs[i].shape[0]
        return [_log_probs(model, o) for o in out.unbind(0)]

    def state_dict(self) -> dict[str, Tensor]:
        state = self.state if self.state is not None else self.zero_state()
        tensors = {f"state.{i}": s.contiguous() for i, s in enumerate(state)}
        return tensors | {"steps": torch.tensor(self.steps)}

    def to_bytes(self) -> bytes:
        """The state as safetensors bytes (restored by ``from_bytes``)."""
        return pack(self.state_dict())

    @classmethod
    def from_bytes(cls, model: nn.Module, data: bytes) -> Stream:
        """A stream of ``model`` that continues where ``to_bytes`` left one."""
        tensors = unpack(data, "language or music stream")
        stream = cls(model)
        stream.state = recurrent_state(tensors, stream.rnn)
        stream.steps = int(take(tensors, "steps", ()))
        return stream


AnyStream = Stream | ForecastStream | ClassifyStream | DecoderStream


def feed_together(streams: Sequence[AnyStream], chunks: Sequence) -> list:
    """Feed one chunk to each of ``streams`` (one kind, one model, chunks of one length) in
    one batched pass; each result and state is as if the stream were fed alone."""
    check_together(streams, chunks)
    return type(streams[0]).feed_together(streams, chunks)  # type: ignore[arg-type]


# ---- one entry point for every task ------------------------------------------------------
def load_run(out: str | Path, which: str = "best") -> Any:
    """What ``open_stream`` takes, loaded from a run directory by its checkpoint's task."""
    from elman.train.checkpoint import read_meta

    task = read_meta(Path(out) / f"{which}.safetensors").get("task")
    if task in ("charlm", "wordlm", "music", "tag"):
        from elman.tasks.lm import charlm, wordlm
        from elman.tasks.music import task as music
        from elman.tasks.tag import task as tag

        loader = {"charlm": charlm, "wordlm": wordlm, "music": music, "tag": tag}[task]
        return loader.load(out, which)[0]
    if task == "forecast":
        from elman.tasks.forecast import trained as forecast_runs

        return forecast_runs.load(out, which)
    if task == "classify":
        from elman.tasks.classify import task as classify

        return classify.load(out, which)
    if task == "seq2seq":
        from elman.tasks.seq2seq import task as seq2seq

        return seq2seq.load(out, which)[:3]  # (model, vocabularies, config)
    raise ValueError(f"{out}: a run of task {task!r}, which has no stream")


def open_stream(model: Any, which: str = "best", **options: Any) -> AnyStream:
    """A new stream of ``model``: a run directory, or a loaded model (see the module
    docstring). Options: forecast ``name`` (the series) and ``detector``; seq2seq ``source``
    (ids, or text when the vocabularies are known: a run directory or ``(model, vocab,
    config)``)."""
    if isinstance(model, str | Path):
        model = load_run(model, which)
    if isinstance(model, tuple):
        return _open_decoder(model, **options)
    kind = _kind(model)
    _no_options(kind, options, {"forecast": {"name", "detector"}, "seq2seq": {"source"}})
    if kind == "forecast":
        return ForecastStream(model, **options)
    if kind == "classify":
        return ClassifyStream(model)
    if kind == "seq2seq":
        if "source" not in options:
            raise ValueError("source: a decoder stream is opened on a source; give source=")
        return DecoderStream(model, options["source"])
    return Stream(model)


def restore_stream(model: Any, data: bytes, which: str = "best") -> AnyStream:
    """The stream of ``model`` (as ``open_stream`` takes it) that ``to_bytes`` saved."""
    if isinstance(model, str | Path):
        model = load_run(model, which)
    if isinstance(model, tuple):
        model = model[0]
    kinds = {
        "forecast": ForecastStream,
        "classify": ClassifyStream,
        "seq2seq": DecoderStream,
        "language": Stream,
    }
    return kinds[_kind(model)].from_bytes(model, data)


def _kind(model: Any) -> str:
    """Which stream ``model`` takes; refuses the models that read the future."""
    from elman.nn.seq2seq import Seq2Seq
    from elman.tasks.classify.model import SequenceClassifier
    from elman.tasks.forecast.trained import Trained
    from elman.tasks.tag.model import Tagger

    if isinstance(model, Tagger):
        raise ValueError(
            "model: a tagger cannot stream: its recurrent layer is always bidirectional, so "
            "every tag depends on the words after it (and a CRF's best path on the whole "
            "sentence); tag whole sentences with elman.tasks.tag.task.tag"
        )
    if isinstance(model, Trained):
        return "forecast"
    if isinstance(getattr(model, "model", model), SequenceClassifier):
        return "classify"
    if isinstance(model, Seq2Seq):
        return "seq2seq"
    if isinstance(model, nn.Module):
        return "language"
    raise TypeError(f"model: expected a trained model or a run directory, got {type(model)}")


def _no_options(kind: str, options: dict, allowed: dict[str, set[str]]) -> None:
    extra = set(options) - allowed.get(kind, set())
    if extra:
        raise ValueError(
            f"options: a {kind} stream takes {sorted(allowed.get(kind, set())) or 'none'}, "
            f"got {sorted(extra)}"
        )


def _open_decoder(loaded: tuple, source: Any = None, **options: Any) -> DecoderStream:
    """A decoder stream of ``(model, vocabularies, config)`` on ``source`` (text or ids)."""
    _no_options("seq2seq", options, {})
    if len(loaded) < 3:
        raise ValueError("model: expected (Seq2Seq, vocabularies, config) as seq2seq.load gives")
    model, vocab, config = loaded[:3]
    if source is None:
        raise ValueError("source: a decoder stream is opened on a source; give source=")
    if isinstance(source, str):
        source = vocab.encode_source(source, config.max_source, "source")
    return DecoderStream(model, source)


__all__ = [
    "ClassifyStream",
    "DecoderStream",
    "ForecastStream",
    "NextSteps",
    "Stream",
    "feed_together",
    "load_run",
    "open_stream",
    "restore_stream",
]
