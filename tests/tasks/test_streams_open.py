"""One entry point for every task's stream: open_stream / restore_stream on loaded models and
run directories, feed_together by kind, and the models that read the future refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elman.tasks.classify import task as classify
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.lm.model import RecurrentLM
from elman.tasks.seq2seq import task as s2s
from elman.tasks.streams import (
    ClassifyStream,
    DecoderStream,
    ForecastStream,
    Stream,
    feed_together,
    open_stream,
    restore_stream,
)
from elman.tasks.tag import task as tag
from elman.train import TrainConfig
from tests.tasks.test_streams_forecast import _trained

TINY_TAG = tag.TagConfig(
    word_embedding=4, char_embedding=2, char_filters=3, hidden=4, min_freq=1, batch_size=2
)


def _seq2seq():
    pairs = [("abc", ["C B A"]), ("bca", ["A C B"]), ("ca", ["A C"])]
    config = s2s.Seq2SeqConfig(embedding=4, hidden=3, layers=2, dropout=0.0)
    vocab = s2s.Vocabularies.fit(pairs, config)
    torch.manual_seed(0)
    return s2s.build_model(vocab, config).eval(), vocab, config


def test_open_and_restore_every_kind():
    torch.manual_seed(0)
    lm = RecurrentLM(11, "gru", 6, 8, 2).eval()
    clf = SequenceClassifier(3, "lstm", 5, 1, False, 0.0, "attention", vocab_size=9, embedding=4)
    trained = _trained()
    model, vocab, config = _seq2seq()
    cases = [
        (lm, {}, Stream, [1, 2, 3], [4]),
        (clf.eval(), {}, ClassifyStream, [1, 2, 3], [4]),
        (model, {"source": [3, 4]}, DecoderStream, [2, 4], [5]),
        ((model, vocab, config), {"source": "abc"}, DecoderStream, [2, 4], [5]),
    ]
    for loaded, options, kind, first, then in cases:
        stream = open_stream(loaded, **options)
        assert type(stream) is kind
        stream.feed(first)
        restored = restore_stream(loaded, stream.to_bytes())
        assert type(restored) is kind and restored.steps == len(first)
        torch.testing.assert_close(restored.feed(then), stream.feed(then))
    stream = open_stream(trained, name="b", detector="nll")
    assert isinstance(stream, ForecastStream) and stream.index == 1
    stream.feed([1.0, 2.0, 1.5])
    again = restore_stream(trained, stream.to_bytes())
    assert again.detector == stream.detector
    np.testing.assert_array_equal(again.feed(3.0).point, stream.feed(3.0).point)
    text = open_stream((model, vocab, config), source="abc")
    ids = open_stream(model, source=vocab.encode_source("abc", 10, "source"))
    torch.testing.assert_close(text.feed([2, 4]), ids.feed([2, 4]))


def test_wrong_options_and_mixed_kinds_are_refused():
    torch.manual_seed(0)
    lm = RecurrentLM(11, "gru", 6, 8, 1).eval()
    model, _, _ = _seq2seq()
    with pytest.raises(ValueError, match=r"a language stream takes none, got \['source'\]"):
        open_stream(lm, source="abc")
    with pytest.raises(ValueError, match="opened on a source"):
        open_stream(model)
    with pytest.raises(TypeError, match="one kind"):
        feed_together([Stream(lm), DecoderStream(model, [3])], [[1], [2]])
    with pytest.raises(TypeError, match="a trained model or a run directory"):
        open_stream(42)
    both = SequenceClassifier(2, "gru", 4, 1, True, 0.0, "last", channels=1)
    with pytest.raises(ValueError, match="bidirectional"):
        open_stream(both)


def test_a_tagger_cannot_stream():
    vocab = tag.Vocabularies.fit([[("the", "at"), ("dog", "nn")]], 1)
    with pytest.raises(ValueError, match="tagger cannot stream: its recurrent layer is always"):
        open_stream(tag.build_model(vocab, TINY_TAG))


def test_run_directories(tmp_path):
    texts = ["good film", "bad plot", "a good plot", "bad film", "good", "bad"] * 3
    labels = ["pos" if "good" in t else "neg" for t in texts]
    csv = tmp_path / "train.csv"
    csv.write_text(
        "text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels, strict=True))
    )
    source = {"kind": "table", "train": str(csv), "valid_fraction": 0.2}
    config = classify.ClassifyConfig(
        hidden=4, embedding=4, bidirectional=False, pooling="mean", batch_size=4, dropout=0.0
    )
    fast = TrainConfig(steps=2, eval_every=2, lr=1e-2, progress=False)
    classify.train(source, config, fast, tmp_path / "clf")
    loaded = classify.load(tmp_path / "clf")
    stream = open_stream(tmp_path / "clf")
    assert isinstance(stream, ClassifyStream) and stream.classes == loaded.classes
    ids = loaded.encoder(["a good film"], "input")[0]
    got = stream.feed(ids)[-1]
    torch.testing.assert_close(got, loaded.probabilities(["a good film"])[0])
    again = restore_stream(tmp_path / "clf", stream.to_bytes())
    assert again.steps == len(ids)
    sentences = tmp_path / "tags.tsv"
    sentences.write_text("the\tat\ndog\tnn\n\na\tat\ncat\tnn\n")
    tag_source = {"kind": "conll", "train": str(sentences), "valid": str(sentences)}
    tag.train(tag_source, TINY_TAG, fast, tmp_path / "tag")
    with pytest.raises(ValueError, match="tagger cannot stream"):
        open_stream(tmp_path / "tag")
