"""Classify streams: every prefix's probabilities equal predict on that prefix, for every
pooling kept as running statistics; state survives bytes; batched streams equal lone ones."""

from __future__ import annotations

import pytest
import torch

from elman.nn.pooling import POOLINGS
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.classify.run import ClassifyRun
from elman.tasks.classify.stream import ClassifyStream
from elman.tasks.classify.task import Encoder
from elman.tasks.streams import feed_together

CUTS = ((0, 1), (1, 4), (4, 5), (5, 10))


def _model(pooling: str, kind: str, cell: str = "lstm") -> SequenceClassifier:
    torch.manual_seed(0)
    extra = {"vocab_size": 9, "embedding": 4} if kind == "text" else {"channels": 2}
    model = SequenceClassifier(3, cell, 5, 2, False, 0.0, pooling, **extra).double().eval()
    if kind == "series":
        model.scale_mean.copy_(torch.tensor([0.5, -1.0]))
        model.scale_std.copy_(torch.tensor([2.0, 0.5]))
    return model


def _inputs(kind: str, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "text":
        return torch.randint(1, 9, (n,), generator=g)
    return torch.randn(n, 2, generator=g, dtype=torch.float64) * 3


@torch.no_grad()
def _prefixes(model: SequenceClassifier, x: torch.Tensor) -> torch.Tensor:
    """(T, K): predict's probabilities of every prefix x[:1], x[:2], ..."""
    rows = [model(x[None, :n], torch.tensor([n])).softmax(-1)[0] for n in range(1, len(x) + 1)]
    return torch.stack(rows)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("kind", ["text", "series"])
def test_every_prefix_equals_predict_and_state_survives_bytes(pooling, kind):
    model, x = _model(pooling, kind), _inputs(kind, 10, 0)
    if kind == "series":
        x[3, 1] = float("nan")  # a missing value: the model reads the training mean
    stream = ClassifyStream(model)
    parts = []
    for a, b in CUTS:
        parts.append(stream.feed(x[a:b]))
        if b == 4:  # stop, save, restore, go on
            stream = ClassifyStream.from_bytes(model, stream.to_bytes())
            assert stream.steps == 4
    torch.testing.assert_close(torch.cat(parts), _prefixes(model, x))
    assert stream.steps == 10


@pytest.mark.parametrize("cell", ["gru", "ln-lstm"])
def test_cells_and_a_loaded_classifier_stream(cell):
    model, x = _model("attention", "text", cell), _inputs("text", 7, 1)
    classes = ("neg", "pos", "mix")
    loaded = ClassifyRun(".", "best", model, {}, None, Encoder("text", None, None), classes)
    stream = ClassifyStream(loaded)
    assert stream.classes == ("neg", "pos", "mix") and stream.model is model
    torch.testing.assert_close(
        torch.cat([stream.feed(x[:2]), stream.feed(x[2:])]), _prefixes(model, x)
    )


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_streams_stepped_together_equal_streams_alone(pooling):
    model = _model(pooling, "series")
    histories = [_inputs("series", n, n) for n in (0, 3, 6)]
    together, alone = (
        [ClassifyStream(model) for _ in histories],
        [ClassifyStream(model) for _ in histories],
    )
    for s, t, h in zip(together, alone, histories, strict=True):
        if len(h):
            s.feed(h)
            t.feed(h)
    chunks = [_inputs("series", 3, 10 + i) for i in range(3)]
    got = feed_together(together, chunks)
    for g, t, x in zip(got, alone, chunks, strict=True):
        torch.testing.assert_close(g, t.feed(x))
    for s, t in zip(together, alone, strict=True):
        torch.testing.assert_close(s.state, t.state)
        torch.testing.assert_close(s.pooled, t.pooled)
        assert s.steps == t.steps


def test_classifiers_that_cannot_stream_are_refused():
    torch.manual_seed(0)
    both = SequenceClassifier(2, "lstm", 4, 1, True, 0.0, "max", channels=2)
    with pytest.raises(ValueError, match="bidirectional classifier cannot stream"):
        ClassifyStream(both)
    conv = SequenceClassifier(2, "lstm", 4, 1, False, 0.0, "max", channels=2, conv=True)
    with pytest.raises(ValueError, match=r"convolutional branch \(conv=True\) cannot stream"):
        ClassifyStream(conv)
    with pytest.raises(TypeError, match="ClassifyRun or SequenceClassifier"):
        ClassifyStream(torch.nn.Linear(2, 2))
    text = ClassifyStream(_model("last", "text"))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 9\)"):
        text.feed([1, 9])
    with pytest.raises(ValueError, match="token ids"):
        text.feed(torch.randn(3))
    with pytest.raises(ValueError, match=r"shape \(steps, 2\)"):
        ClassifyStream(_model("last", "series")).feed(torch.randn(3, 3))
    narrow = SequenceClassifier(3, "lstm", 4, 2, False, 0.0, "max", channels=2).double()
    with pytest.raises(ValueError, match=r"state\.0: expected shape \(2, 1, 5\)"):
        ClassifyStream.from_bytes(_model("max", "series"), ClassifyStream(narrow).to_bytes())
    with pytest.raises(ValueError, match=r"pool\.sum: missing"):
        ClassifyStream.from_bytes(_model("mean", "text"), text.to_bytes())
