"""Stateful streams over trained recurrent models: feed one step or a chunk at a time, keep
the state between calls, and get exactly what the whole-sequence run gives at those steps.

Every task's stream has one interface, so a server can treat them alike:

    stream = open_stream(run_or_dir, **options)           # Run.open_stream
    result = stream.feed(chunk)                           # one result row per step fed
    data = stream.to_bytes()                              # safetensors bytes
    stream = restore_stream(run_or_dir, data)             # Run.restore_stream
    results = feed_together(streams, chunks)              # one batched pass, same results
    stream.steps, stream.model                            # steps read so far, the network

Each task's ``Run`` says what its stream takes and answers (language and music models: the
next step's log-probabilities, ``elman.tasks.lm.stream``; forecasters: the next value's
point, quantiles and each value's anomaly score, ``elman.tasks.forecast.stream``;
classifiers: the class probabilities so far, ``elman.tasks.classify.stream``; seq2seq: the
next target token's log-probabilities on a source, ``elman.tasks.seq2seq.stream``). What reads
the future cannot stream and is refused with a ValueError saying why: bidirectional layers
(every tagger, bidirectional classifiers), the classifier's convolutional branch, direct-mode
forecasters.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elman.tasks.registry import load_run
from elman.tasks.spec import Run
from elman.tasks.streaming import check_together


def _run(run: Run | str | Path, which: str) -> Run:
    if isinstance(run, str | Path):
        return load_run(run, which)
    if not isinstance(run, Run):
        raise TypeError(
            f"run: expected a run directory or a Run (elman.tasks.registry.load_run), got "
            f"{type(run).__name__}"
        )
    return run


def open_stream(run: Run | str | Path, which: str = "best", **options: Any) -> Any:
    """A new stream of ``run`` (a run directory, or a loaded ``Run``); ``options`` are the
    task's (forecast: ``name`` of the series, ``detector``; seq2seq: ``source``, text or ids)."""
    return _run(run, which).open_stream(**options)


def restore_stream(run: Run | str | Path, data: bytes, which: str = "best") -> Any:
    """The stream of ``run`` that ``to_bytes`` saved as ``data``."""
    return _run(run, which).restore_stream(data)


def feed_together(streams: Sequence[Any], chunks: Sequence) -> list:
    """Feed one chunk to each of ``streams`` (one kind, one model, chunks of one length) in
    one batched pass; each result and state is as if the stream were fed alone."""
    check_together(streams, chunks)
    return type(streams[0]).feed_together(streams, chunks)


__all__ = ["feed_together", "open_stream", "restore_stream"]
