"""Contextual string embeddings in the tagger: each word's features are the two character LMs'
states at its ends (checked against the LMs run over each prefix by hand), unknown characters,
frozen LMs, a self-contained run that reloads, predicts, evaluates, serves, exports and
resumes exactly, the CLI, and the refusals."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from elman.cli import main
from elman.data.vocab import CharVocab
from elman.tasks.lm import charlm
from elman.tasks.registry import load_run
from elman.tasks.tag import task as tag
from elman.tasks.tag.lms import load_strings
from elman.tasks.tag.strings import CharIds, ContextualStrings
from elman.train import TrainConfig, Trainer
from elman.train.checkpoint import CheckpointError, load_checkpoint
from tests.helpers import refused

PATTERNS = [
    [("the", "at"), ("dog", "nn"), ("runs", "vbz")],
    [("a", "at"), ("cat", "nn"), ("sleeps", "vbz"), (".", ".")],
    [("the", "at"), ("big", "jj"), ("cat", "nn"), ("runs", "vbz")],
    [("dogs", "nns"), ("sleep", "vb"), (".", ".")],
]
TEXT = "The dog runs.\nA cat sleeps.\nThe big cat runs.\nDogs sleep?\n" * 12
TINY = tag.TagConfig(
    word_embedding=0,
    char_filters=0,
    hidden=8,
    dropout=0.2,
    min_freq=1,
    batch_size=4,
    strings=True,
)
TRAIN = TrainConfig(steps=12, eval_every=4, lr=3e-2, progress=False)


def tiny_lm(vocab: CharVocab, hidden: int, layers: int = 2, reverse: bool = False) -> charlm.CharLM:
    config = charlm.CharLMConfig(
        embedding=6, hidden=hidden, layers=layers, dropout=0.3, reverse=reverse
    )
    return charlm.CharLM(len(vocab), config)


def tiny_strings(vocab: CharVocab) -> ContextualStrings:
    """An untrained pair of different sizes (random weights are as good as any here)."""
    torch.manual_seed(0)
    return ContextualStrings(tiny_lm(vocab, 7), tiny_lm(vocab, 5, 1, True), vocab, vocab)


def conll(path: Path, sentences) -> Path:
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n")
    return path


@pytest.fixture(scope="module")
def lms(tmp_path_factory) -> tuple[Path, Path]:
    """A forward (hidden 12) and a backward (hidden 10) character LM run, trained briefly."""
    root = tmp_path_factory.mktemp("lms")
    (root / "text.txt").write_text(TEXT)
    for name, reverse, hidden in (("forward", False, 12), ("backward", True, 10)):
        config = charlm.CharLMConfig(
            embedding=8, hidden=hidden, layers=1, batch_size=2, seq_len=16, reverse=reverse
        )
        train = TrainConfig(steps=3, eval_every=3, progress=False)
        charlm.train(root / "text.txt", config, train, root / name)
    return root / "forward", root / "backward"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tagged")
    train = conll(root / "train.tsv", PATTERNS * 5)
    valid = conll(root / "valid.tsv", PATTERNS[:2])
    return {"kind": "conll", "train": str(train), "valid": str(valid), "test": str(valid)}


# ---- the features ------------------------------------------------------------------------
def by_hand(lm: charlm.CharLM, vocab: CharVocab, text: str) -> torch.Tensor:
    """The LM's top-layer state after reading all of ``text``."""
    h, _ = lm.features(vocab.encode(text)[None])
    return h[0, -1]


@pytest.mark.parametrize("newline", [True, False])
def test_a_words_features_are_the_lms_states_at_its_ends(newline):
    vocab = CharVocab.from_text(TEXT if newline else TEXT.replace("\n", " "))
    strings = tiny_strings(vocab).double()
    strings.train()  # the LMs stay in eval mode: no dropout
    sentences = [["The", "big", "cat", "runs."], ["A", "dog"], ["Dogs"]]
    e = strings.embed(sentences)
    assert e.shape == (3, 4, 12) and e.dtype == torch.float64
    start = "\n" if newline else ""
    with torch.no_grad():
        for b, words in enumerate(sentences):
            s = " ".join(words)
            for i, w in enumerate(words):
                a = len(" ".join(words[:i])) + (i > 0)  # the word's first character in s
                assert s[a : a + len(w)] == w
                forward = by_hand(strings.forward_lm, vocab, start + s[: a + len(w)])
                backward = by_hand(strings.backward_lm, vocab, start + s[a:][::-1])
                torch.testing.assert_close(e[b, i], torch.cat([forward, backward]))
            assert not e[b, len(words) :].any()  # padding words are zero
    cached = strings.features(sentences)  # the cache: float16, one tensor per sentence
    for b, words in enumerate(sentences):
        assert cached[b].dtype == torch.float16 and cached[b].shape == (len(words), 12)
        torch.testing.assert_close(cached[b].double(), e[b, : len(words)], atol=1e-3, rtol=0)


def test_unknown_characters_are_read_as_known_ones():
    vocab = CharVocab.from_text(TEXT)  # no "E", "é", "É", "☃", tab, or digits
    ids = CharIds(vocab)
    code = {c: i for i, c in enumerate(vocab.chars)}
    assert ids.encode("É") == [code["e"]]  # its decomposition's base letter, other case
    assert ids.encode("é") == [code["e"]]  # its decomposition's base letter
    assert ids.encode("E") == [code["e"]]  # the other case
    assert CharIds(vocab).encode("É") == ids.encode("É")  # the same whatever came first
    assert ids.encode("☃7") == [code["?"], code["?"]]  # nothing close: the fallback
    assert ids.encode("\t") == [code[" "]]  # whitespace: a space
    assert CharIds(CharVocab.from_text("ab c")).encode("☃") == [3]  # no fallback: "c", the last
    strings = tiny_strings(vocab)
    same = strings.embed([["café", "☃"], ["cafe", "?"]])
    torch.testing.assert_close(same[0], same[1])


def test_empty_words_are_refused_naming_them():
    strings = tiny_strings(CharVocab.from_text(TEXT))
    with pytest.raises(ValueError, match=r"sentence 1 word 1: expected a non-empty string"):
        strings.embed([["a"], ["the", ""]])


# ---- training ------------------------------------------------------------------------------
def test_the_lms_stay_frozen_and_in_eval_mode_while_the_tagger_trains(tmp_path, data):
    train, valid, _ = tag.load_source(data)
    strings = tiny_strings(CharVocab.from_text(TEXT))
    before = {k: v.clone() for k, v in strings.state_dict().items()}
    task = tag.TagTask(train, valid, replace(TINY, word_embedding=4), strings=strings)
    model = task.model
    model.train()
    assert model.training and not strings.forward_lm.training and not strings.backward_lm.training
    batch = tag.collate(tag.encode_sentences(task.vocab, train[:3], "t"), [0, 1, 2])
    words = [[w for w, _ in s] for s in train[:3]]
    batch = replace(batch, strings=strings.embed(words))  # computed inside the step
    model.loss(batch)[0].backward()
    assert all(p.grad is None and not p.requires_grad for p in strings.parameters())
    assert model.emit.weight.grad is not None and model.embed.weight.grad is not None
    Trainer(task, TRAIN, tmp_path / "run").fit()
    assert not strings.forward_lm.training and not strings.backward_lm.training
    for name, value in strings.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_a_tagger_needs_its_lms_exactly_when_configured():
    vocab = tag.Vocabularies.fit(PATTERNS, 1)
    with pytest.raises(ValueError, match=r"strings=True\) needs a forward and a backward"):
        tag.build_model(vocab, TINY)
    with pytest.raises(ValueError, match="got strings=False with two LMs"):
        tag.build_model(vocab, tag.TagConfig(), tiny_strings(CharVocab.from_text(TEXT)))
    with pytest.raises(ValueError, match="word_embedding must be a positive integer, got 0"):
        tag.TagConfig(word_embedding=0)
    model = tag.build_model(vocab, TINY, tiny_strings(CharVocab.from_text(TEXT)))
    batch = tag.collate(tag.encode_sentences(vocab, PATTERNS, "t"), [0])
    with pytest.raises(ValueError, match="the batch has no strings features"):
        model.emissions(batch)


@pytest.mark.parametrize(
    "changes",
    [{}, {"word_embedding": 6, "char_filters": 4, "crf": False}],
    ids=["strings-only-crf", "words-chars-softmax"],
)
def test_a_strings_run_is_self_contained_and_resumes_exactly(tmp_path, lms, data, changes):
    copies = [shutil.copytree(p, tmp_path / p.name) for p in lms]  # removed before reloading
    config = replace(TINY, **changes)
    whole, paused = tmp_path / "whole", tmp_path / "paused"
    strings = load_strings(copies)
    metrics = tag.train(data, config, TRAIN, whole, strings=strings)
    tag.train(data, config, TRAIN, paused, until=6, strings=load_strings(copies))
    for p in copies:
        shutil.rmtree(p)
    tag.resume(paused)
    a, b = (load_run(d, "last").model.state_dict() for d in (whole, paused))
    for (name, x), y in zip(a.items(), b.values(), strict=True):
        assert torch.equal(x, y), name
    tensors, meta = load_checkpoint(whole / "best.safetensors", "tag")
    assert {"model.strings.forward_lm.embed.weight", "model.strings.backward_lm.head.bias"} <= set(
        tensors
    )
    header = meta["task_config"]["strings"]
    assert header["forward"]["model"]["hidden"] == 12 and header["backward"]["model"]["reverse"]
    assert header["forward"]["source"]["path"] == str(copies[0].resolve())
    assert len(header["backward"]["source"]["sha256"]) == 64
    run = load_run(whole, "last")  # its LM runs are gone: the checkpoint holds the LMs
    assert run.config == config and run.model.strings.size == 22
    for name, value in strings.state_dict().items():
        assert torch.equal(run.model.strings.state_dict()[name], value), name
    assert run.details()["strings"] == [header["forward"]["source"], header["backward"]["source"]]
    assert run.evaluate(split="valid")["accuracy"] == metrics["val_accuracy"]
    sentences = [[w for w, _ in s] for s in PATTERNS]
    predicted = run.predict([" ".join(s) for s in sentences])
    assert [p["tags"] for p in predicted] == load_run(whole, "last").tag(sentences)
    assert [p["tags"] for p in predicted] == tag.tag(run.model, run.vocab, sentences)


def test_a_tampered_lm_in_a_tagger_checkpoint_is_refused(tmp_path, lms, data):
    tag.train(
        data, TINY, replace(TRAIN, steps=2, eval_every=2), tmp_path / "r", strings=load_strings(lms)
    )
    path = tmp_path / "r" / "best.safetensors"
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        header = f.metadata()
    tensors["model.strings.backward_lm.head.bias"] += 1.0
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(CheckpointError, match="its backward LM's weights are not those"):
        load_run(tmp_path / "r", "best")


def test_the_served_tagger_reads_strings_too(tmp_path, lms, data):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from elman.serve.app import create_app
    from elman.serve.config import ServeConfig
    from elman.serve.registry import load_models

    out = tmp_path / "tagger"
    tag.train(data, TINY, replace(TRAIN, steps=4), out, strings=load_strings(lms))
    app = create_app(load_models([out]), ServeConfig(state=tmp_path / "s.sqlite"))
    with TestClient(app) as client:
        got = client.post("/models/tagger/tag", json={"texts": ["the dog runs ."]}).json()
        assert got["tags"] == load_run(out).tag([["the", "dog", "runs", "."]])
        assert client.get("/models/tagger").json()["strings"][0]["backward"] is False


# ---- the command line ------------------------------------------------------------------------
TAG = ["--hidden", "6", "--char-filters", "3", "--min-freq", "1", "--batch-size", "2"]
RUN = ["--steps", "4", "--eval-every", "2", "--no-progress"]


def test_cli_trains_predicts_evaluates_and_exports_a_strings_tagger(tmp_path, lms, data, capsys):
    out = tmp_path / "t"
    files = ["--train", data["train"], "--valid", data["valid"], "--test", data["test"]]
    strings = ["--strings", str(lms[1]), str(lms[0])]  # either order
    args = ["train", "tag", *files, *strings, "--word-embedding", "0", *TAG, *RUN]
    assert main([*args, "--out", str(out)]) == 0
    capsys.readouterr()
    (tmp_path / "words.txt").write_text("the dog sleeps .\n")
    assert main(["predict", str(out), str(tmp_path / "words.txt")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["words"] == ["the", "dog", "sleeps", "."] and len(row["tags"]) == 4
    assert main(["evaluate", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == 7
    assert main(["evaluate", str(out), data["valid"]]) == 0
    assert json.loads(capsys.readouterr().out)["data"] == data["valid"]
    pytest.importorskip("onnxruntime")  # last: without it the rest has run
    assert main(["export", str(out), "--out", str(tmp_path / "graphs")]) == 0
    assert max(json.loads(capsys.readouterr().out)["max_abs_diff"].values()) < 1e-4


def test_cli_refuses_lms_that_do_not_make_a_pair(tmp_path, lms, data, capsys):
    files = ["--train", data["train"], "--valid", data["valid"]]
    base = ["train", "tag", *files, *TAG, *RUN, "--out", str(tmp_path / "t")]
    forward, backward = (str(p) for p in lms)
    refused(capsys, [*base, "--strings", forward, forward], "both", "are forward", "--reverse")
    refused(capsys, [*base, "--strings", backward, backward], "both", "are backward")
    tagger = tmp_path / "tagger"
    assert main(["train", "tag", *files, *TAG, *RUN, "--out", str(tagger)]) == 0
    refused(capsys, [*base, "--strings", forward, str(tagger)], "holds a tag run", "charlm")
    refused(capsys, [*base, "--strings", forward, str(tmp_path / "none")], "does not exist")
    refused(capsys, [*base, "--word-embedding", "0"], "word_embedding", "got 0", "--strings")
    assert not (tmp_path / "t").exists()
