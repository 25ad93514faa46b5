"""Sequence classification: padding invariance, text and series end to end, metrics, errors."""

from __future__ import annotations

import json

import pytest
import torch

from elman.data.labelled import Examples
from elman.data.tokenize import Tokenizer
from elman.tasks.classify import task as classify
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.classify.run import SPEC, ClassifyRun
from elman.tasks.registry import load_run
from elman.tasks.scores import format_confusion, scores
from elman.train import TrainConfig, Trainer
from tests.helpers import assert_batches_reach_model_device

TINY = classify.ClassifyConfig(hidden=8, embedding=8, batch_size=4, dropout=0.0)
FAST = TrainConfig(steps=40, eval_every=20, lr=2e-2, progress=False)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("conv", [False, True])
def test_padded_batch_equals_each_example_alone(pooling, conv):
    torch.manual_seed(0)
    model = SequenceClassifier(3, "gru", 5, 2, True, 0.0, pooling, channels=2, conv=conv)
    model = model.double().eval()
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(3, 6, 2, dtype=torch.float64)
    junk = x.clone()
    for b, n in enumerate(lengths.tolist()):
        junk[b, n:] = 1e3
    batch = model(junk, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = model(x[b : b + 1, :n], lengths[b : b + 1])
        torch.testing.assert_close(batch[b], alone[0])


def test_scores_and_confusion():
    truth = torch.tensor([0, 0, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0])
    s = scores(truth, pred, 3)
    assert s["accuracy"] == pytest.approx(0.6)
    assert s["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert s["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)  # per-class F1 1/2, 4/5, 0
    table = format_confusion(s["confusion"], ["neg", "pos", "mix"])
    assert table.splitlines()[0].split() == ["|", "neg", "pos", "mix"]


def _words(n: int, seed: int) -> Examples:
    g = torch.Generator().manual_seed(seed)
    texts, labels = [], []
    for i in range(n):
        good = i % 2 == 0
        filler = ["the", "film", "was", "a", "plot", "and"]
        words = [
            filler[int(j)]
            for j in torch.randint(6, (int(torch.randint(2, 7, (1,), generator=g)),), generator=g)
        ]
        words.insert(
            int(torch.randint(len(words), (1,), generator=g)), "great" if good else "awful"
        )
        texts.append(" ".join(words))
        labels.append("pos" if good else "neg")
    return Examples("text", texts, labels)


def test_text_classifier_learns_and_round_trips(tmp_path):
    csv = tmp_path / "train.csv"
    data = _words(80, 0)
    csv.write_text(
        "text,label\n"
        + "".join(f"{t},{y}\n" for t, y in zip(data.inputs, data.labels, strict=True))
    )
    test_csv = tmp_path / "test.csv"
    held = _words(20, 1)
    test_csv.write_text(
        "text,label\n"
        + "".join(f"{t},{y}\n" for t, y in zip(held.inputs, held.labels, strict=True))
    )
    source = {"kind": "table", "train": str(csv), "test": str(test_csv), "valid_fraction": 0.2}
    metrics = classify.train(source, TINY, FAST, tmp_path / "run")
    assert metrics["val_accuracy"] == 1.0
    model = load_run(tmp_path / "run")
    assert isinstance(model, ClassifyRun) and model.which == "best"
    assert model.config == TINY and model.details() == {"classes": ["neg", "pos"], "input": "text"}
    result = model.evaluate()  # the run's test split
    assert result["accuracy"] >= 0.85 and result["examples"] == 20  # chance is 0.5
    assert result["data"] == "test split" and "baselines" not in result
    assert model.evaluate(str(test_csv)) == result | {"data": str(test_csv)}
    out = model.predict(["a great film", "an awful plot"])
    assert [o["label"] for o in out] == ["pos", "neg"]
    assert sum(out[0]["probabilities"].values()) == pytest.approx(1.0)
    json.dumps(out)  # plain JSON-able values
    with pytest.raises(ValueError, match=r"input example 0: expected a non-empty text"):
        model.predict([""])
    with pytest.raises(ValueError, match=r"label\(s\) \['meh'\] never occur in training"):
        model.evaluate(Examples("text", ["a film"], ["meh"]))


def test_series_classifier_with_variable_lengths_and_missing_values(tmp_path):
    g = torch.Generator().manual_seed(0)
    series, labels = [], []
    for i in range(60):
        n = int(torch.randint(5, 12, (1,), generator=g))
        up = i % 2 == 0
        x = torch.linspace(0, 1, n)[:, None] * (1 if up else -1) + 0.05 * torch.randn(
            n, 2, generator=g
        )
        x[0, 1] = float("nan")
        series.append(x)
        labels.append("up" if up else "down")
    data = Examples("series", series, labels)
    task = classify.ClassifyTask(
        data.subset(range(48)),
        data.subset(range(48, 60)),
        classify.ClassifyConfig(hidden=8, conv=True, batch_size=8),
        0,
    )
    assert task.model.scale_std.shape == (2,) and not torch.isnan(task.model.scale_mean).any()
    metrics = Trainer(task, FAST, tmp_path).fit()
    assert metrics["val_accuracy"] == 1.0
    with pytest.raises(
        ValueError, match=r"training example 60: expected a series of shape \(T, 2\), got \(3, 3\)"
    ):
        classify.ClassifyTask(
            Examples("series", [*series, torch.zeros(3, 3)], [*labels, "up"]), data, TINY, 0
        )
    with pytest.raises(ValueError, match="expected numbers"):
        task.encoder(["abc"], "input")


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="pooling must be one of last, mean, max, attention"):
        classify.ClassifyConfig(pooling="sum")
    with pytest.raises(ValueError, match="word_dropout"):
        classify.ClassifyConfig(word_dropout=1.0)


def test_word_dropout_turns_training_tokens_into_unk_and_spares_padding():
    torch.manual_seed(0)
    model = SequenceClassifier(2, "lstm", 4, vocab_size=20, embedding=3, word_dropout=0.5)
    seen = []
    model.embed.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    x = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 0, 0, 0, 0, 0]])
    lengths = torch.tensor([8, 3])
    model.train()(x, lengths)
    dropped = seen[-1] != x
    assert dropped.any() and bool((seen[-1][dropped] == 1).all())  # 1 is <unk>
    assert bool((seen[-1][x == 0] == 0).all())
    model.eval()(x, lengths)
    assert torch.equal(seen[-1], x)


def test_text_dropouts_are_refused_for_series():
    data = Examples("series", [torch.zeros(4, 2), torch.ones(3, 2)], ["a", "b"])
    config = classify.ClassifyConfig(hidden=4, word_dropout=0.1)
    with pytest.raises(ValueError, match="word_dropout: applies to text input only"):
        classify.ClassifyTask(data, data, config, 0)


def test_the_conv_branch_is_on_by_default_for_series_only():
    config = classify.ClassifyConfig(hidden=4, embedding=4)
    series = classify.build_model(config, 2, classify.Encoder("series", None, 3))
    text = classify.build_model(config, 2, classify.Encoder("text", Tokenizer.fit(["a b"]), None))
    assert series.conv is not None and text.conv is None
    off = classify.ClassifyConfig(hidden=4, conv=False)
    assert classify.build_model(off, 2, classify.Encoder("series", None, 3)).conv is None
    with pytest.raises(TypeError, match="conv must be True, False or None"):
        classify.ClassifyConfig(conv=1)


def test_the_run_evaluates_and_predicts_on_the_model_device(tmp_path, monkeypatch):
    data = _words(40, 0)
    csv = tmp_path / "train.csv"
    csv.write_text(
        "text,label\n"
        + "".join(f"{t},{y}\n" for t, y in zip(data.inputs, data.labels, strict=True))
    )
    source = {"kind": "table", "train": str(csv), "valid_fraction": 0.2}
    classify.train(source, TINY, TrainConfig(steps=2, eval_every=2, progress=False), tmp_path / "r")
    run = SPEC.load(tmp_path / "r", "last")
    assert run.which == "last" and run.task == "classify"
    with pytest.raises(ValueError, match="no test set"):
        run.evaluate()
    assert_batches_reach_model_device(monkeypatch, run.model, lambda: run.evaluate(data))
    assert_batches_reach_model_device(monkeypatch, run.model, lambda: run.predict(["a film"]))
    with pytest.raises(ValueError, match="'step' is for language and music models"):
        run.graphs("step")
    with pytest.raises(ValueError, match="bidirectional classifier cannot stream"):
        run.open_stream()


def test_each_validation_fold_holds_out_its_own_share_and_together_they_cover_the_data(tmp_path):
    from elman.tasks.classify.sources import load_source

    data = _words(40, 0)
    csv = tmp_path / "train.csv"
    csv.write_text(
        "text,label\n"
        + "".join(f"{t},{y}\n" for t, y in zip(data.inputs, data.labels, strict=True))
    )
    source = {"kind": "table", "train": str(csv), "valid_fraction": 0.25}
    held = []
    for fold in range(4):
        train, valid, _ = load_source(source | {"valid_fold": fold})
        assert len(train) + len(valid) == 40 and len(valid) == 10
        held += list(valid.inputs)
    assert sorted(held) == sorted(data.inputs)  # every example validates exactly once
    with pytest.raises(ValueError, match=r"valid_fold must be an integer in \[0, 3\].*got 4"):
        load_source(source | {"valid_fold": 4})
    with pytest.raises(ValueError, match="valid_fold 1 needs valid_fraction > 0"):
        load_source(source | {"valid_fold": 1, "valid_fraction": 0})
