"""Tagging: padding invariance, CRF and softmax heads, training, unseen words, files."""

from __future__ import annotations

import pytest
import torch

from elman.tasks.registry import load_run
from elman.tasks.tag import task as tag
from elman.tasks.tag.run import SPEC, TagRun
from elman.train import TrainConfig
from tests.helpers import assert_batches_reach_model_device

PATTERNS = [
    [("the", "at"), ("dog", "nn"), ("runs", "vbz")],
    [("a", "at"), ("cat", "nn"), ("sleeps", "vbz"), (".", ".")],
    [("the", "at"), ("big", "jj"), ("cat", "nn"), ("runs", "vbz")],
    [("dogs", "nns"), ("sleep", "vb"), (".", ".")],
]
TINY = tag.TagConfig(
    word_embedding=8,
    char_embedding=4,
    char_filters=6,
    hidden=8,
    dropout=0.0,
    min_freq=1,
    batch_size=4,
)


def test_padded_batch_scores_equal_each_sentence_alone():
    torch.manual_seed(0)
    vocab = tag.Vocabularies.fit(PATTERNS, 1)
    model = tag.build_model(vocab, TINY).double().eval()
    data = tag.encode_sentences(vocab, PATTERNS, "t")
    batch = tag.collate(data, [0, 1, 3])
    e = model.emissions(batch)
    for row, i in enumerate([0, 1, 3]):
        alone = model.emissions(tag.collate(data, [i]))
        n = len(PATTERNS[i])
        torch.testing.assert_close(e[row, :n], alone[0])
    loss, tokens, _ = model.loss(batch)
    assert tokens == 3 + 4 + 3 and torch.isfinite(loss)


@pytest.mark.parametrize("crf", [True, False])
def test_tagger_learns_tags_and_tags_unseen_words(tmp_path, crf):
    train_file, valid_file = tmp_path / "train.tsv", tmp_path / "valid.tsv"
    rows = lambda sents: "\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sents) + "\n"  # noqa: E731
    train_file.write_text(rows(PATTERNS * 10))
    valid_file.write_text(rows(PATTERNS[:2]))
    source = {"kind": "conll", "train": str(train_file), "valid": str(valid_file)}
    config = tag.TagConfig(**{**TINY.__dict__, "crf": crf})
    metrics = tag.train(
        source,
        config,
        TrainConfig(steps=60, eval_every=30, lr=3e-2, progress=False),
        tmp_path / "run",
    )
    assert metrics["val_accuracy"] == 1.0
    run = load_run(tmp_path / "run")
    assert isinstance(run, TagRun) and run.config == config
    model, vocab = run.model, run.vocab
    assert tag.tag(model, vocab, [["the", "dog", "sleeps", "."]]) == [["at", "nn", "vbz", "."]]
    assert run.predict(["the dog sleeps .", ["the", "cat"]]) == [
        {"words": ["the", "dog", "sleeps", "."], "tags": ["at", "nn", "vbz", "."]},
        {"words": ["the", "cat"], "tags": tag.tag(model, vocab, [["the", "cat"]])[0]},
    ]
    assert run.evaluate(split="valid") == run.evaluate(str(valid_file)) | {"data": "valid split"}
    assert run.evaluate(split="valid")["accuracy"] == 1.0
    with pytest.raises(ValueError, match="no test split"):
        run.evaluate()
    unseen = tag.accuracy(model, [vocab.encode(["the", "zebra", "runs"], ["at", "nn", "vbz"])])
    assert unseen["unseen_tokens"] == 1 and unseen["tokens"] == 3
    with pytest.raises(ValueError, match="an empty sentence"):
        tag.tag(model, vocab, [[]])
    odd = tag.encode_sentences(vocab, [[("the", "at"), ("dog", "zz")], PATTERNS[0]], "held-out")
    assert tag.accuracy(model, odd)["accuracy"] == pytest.approx(4 / 5)  # "zz" is always wrong
    assert tag._mean_loss(model, odd) == pytest.approx(tag._mean_loss(model, odd[1:]))
    with pytest.raises(ValueError, match=r"tag\(s\) \['xx'\] never occur in training"):
        vocab.encode(["the"], ["xx"])


def test_conll_reader_reports_malformed_lines(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("the\tat\ndog\n")
    with pytest.raises(ValueError, match=r"bad\.tsv line 2: expected 'word<TAB>tag'"):
        tag.read_conll(path)
    with pytest.raises(ValueError, match="kind must be 'brown' or 'conll'"):
        tag.load_source({"kind": "json"})


def test_the_run_evaluates_on_the_model_device_and_never_streams(tmp_path, monkeypatch):
    path = tmp_path / "tagged.tsv"
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in PATTERNS) + "\n")
    source = {"kind": "conll", "train": str(path), "valid": str(path), "test": str(path)}
    tag.train(source, TINY, TrainConfig(steps=2, eval_every=2, progress=False), tmp_path / "r")
    run = SPEC.load(tmp_path / "r")
    assert run.details() == {"tags": list(run.vocab.tags)}
    assert run.evaluate()["data"] == "test split"
    for evaluate in (run.evaluate, lambda: run.predict(["the dog"])):
        assert_batches_reach_model_device(monkeypatch, run.model, evaluate)
    refusal = "model: a tagger cannot stream: its recurrent layer is always bidirectional"
    with pytest.raises(ValueError, match=refusal):
        run.open_stream()
    with pytest.raises(ValueError, match=refusal):
        run.restore_stream(b"")
    with pytest.raises(ValueError, match="'step' is for language and music models"):
        run.graphs("step")
