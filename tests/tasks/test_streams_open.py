"""One entry point for every task's stream: open_stream / restore_stream on run directories
and loaded Runs (each task's ``Run.open_stream``), feed_together by kind, and the models that
read the future refused with their reason. The runs are the legacy fixtures of every task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elman.tasks.registry import load_run
from elman.tasks.streams import feed_together, open_stream, restore_stream
from tests.fixtures.legacy.record import HERE

RUNS = HERE / "runs"
CASES = {  # task -> (options, first chunk, next chunk)
    "charlm": ({}, [1, 2, 3], [4]),
    "wordlm": ({}, [3, 4], [5]),
    "seq2seq": ({"source": "cat"}, [1, 5], [4]),
    "forecast": ({"name": "b"}, [10.0, 10.5, 9.5], [10.2]),
}


def _same(a, b) -> None:
    if hasattr(a, "point"):  # a forecast stream's NextSteps
        np.testing.assert_array_equal(a.point, b.point)
        np.testing.assert_array_equal(a.score, b.score)
    else:
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("task", sorted(CASES))
def test_open_feed_save_and_restore_from_a_directory_or_a_run(task):
    options, first, then = CASES[task]
    run = load_run(RUNS / task)
    for opened in (open_stream(RUNS / task, **options), open_stream(run, **options)):
        opened.feed(first)
        data = opened.to_bytes()
        for restored in (restore_stream(RUNS / task, data), restore_stream(run, data)):
            assert type(restored) is type(opened) and restored.steps == len(first)
            _same(restored.feed(then), opened.feed(then))
            opened = restore_stream(run, data)  # the next check starts from the same state


def test_feed_together_equals_feeding_alone():
    run = load_run(RUNS / "charlm")
    a, b = run.open_stream(), run.open_stream()
    a.feed([1, 2])
    alone = [run.restore_stream(a.to_bytes()).feed([3]), run.open_stream().feed([4])]
    together = feed_together([a, b], [[3], [4]])
    for x, y in zip(together, alone, strict=True):
        torch.testing.assert_close(x, y)


def test_mixed_kinds_bad_options_and_bad_runs_are_refused():
    lm, s2s = load_run(RUNS / "charlm"), load_run(RUNS / "seq2seq")
    with pytest.raises(TypeError, match="one kind"):
        feed_together([lm.open_stream(), s2s.open_stream(source="cat")], [[1], [2]])
    with pytest.raises(ValueError, match=r"takes none, got \['source'\]"):
        open_stream(lm, source="abc")
    with pytest.raises(ValueError, match="opened on a source"):
        open_stream(s2s)
    with pytest.raises(TypeError, match="a run directory or a Run"):
        open_stream(42)


@pytest.mark.parametrize(
    ("task", "why"),
    [
        ("tag", "tagger cannot stream: its recurrent layer is always bidirectional"),
        ("classify", "a bidirectional classifier cannot stream"),
    ],
)
def test_models_that_read_the_future_cannot_stream(task, why):
    with pytest.raises(ValueError, match=why):
        open_stream(RUNS / task)
