"""Word LM: data preparation, tied embeddings, training, exact resume, autocomplete."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from elman.data.tokenize import EOS_ID
from elman.decode import Sampling
from elman.tasks.lm import wordlm
from elman.tasks.lm.run import WORDLM
from elman.train import TrainConfig
from tests.helpers import assert_batches_reach_model_device

BROWN = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "brown"
TINY = wordlm.WordLMConfig(
    cell="gru", embedding=12, hidden=16, layers=2, batch_size=4, seq_len=8, min_freq=1
)
SENTENCES = [
    "the cat sat on the mat .",
    "the dog sat on the log .",
    "a cat saw a dog .",
    "the dog saw the cat on the mat .",
] * 15


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("wordlm")
    (root / "a.txt").write_text("\n".join(SENTENCES[:40]) + "\n")
    (root / "b.txt").write_text("\n\n".join(SENTENCES[40:]) + "\n")
    (root / "valid.txt").write_text("\n".join(SENTENCES[:8]) + "\n")
    return root


def test_documents_become_one_stream_with_eos_and_starts(corpus_files):
    corpus = wordlm.text_corpus([corpus_files / "a.txt", corpus_files / "b.txt"])
    assert [len(d) for d in corpus.train] == [40, 14] and len(corpus.valid[0]) == 6
    tok = wordlm.fit_tokenizer(corpus, TINY)
    assert tok.kind == "word" and tok.lower
    ids, starts = wordlm.encode_documents(tok, corpus.train)
    assert ids[starts[0] - 1] == EOS_ID and int((ids == EOS_ID).sum()) == 54
    assert starts.tolist() == [sum(len(s.split()) + 1 for s in SENTENCES[:40])]


@pytest.mark.parametrize(("embedding", "hidden"), [(16, 16), (8, 16)])
def test_tied_embeddings_share_one_matrix(embedding, hidden):
    model = wordlm.build_model(30, wordlm.WordLMConfig(embedding=embedding, hidden=hidden))
    assert model.head.weight is model.embed.weight
    assert (model.proj is None) == (embedding == hidden)
    untied = wordlm.build_model(30, wordlm.WordLMConfig(embedding=8, hidden=16, tie=False))
    assert untied.head.weight is not untied.embed.weight and untied.proj is None
    logits, _ = model(torch.randint(30, (2, 5)))
    assert logits.shape == (2, 5, 30)


def test_adaptive_softmax_loss_and_logits_agree_and_it_trains(tmp_path, corpus_files):
    config = wordlm.WordLMConfig(embedding=8, hidden=16, tie=False, cutoffs=(4, 9))
    model = wordlm.build_model(14, config).eval()
    x, y = torch.randint(14, (2, 5)), torch.randint(14, (2, 5))
    loss, _, _ = model(x, targets=y)
    logits, _ = model(x)
    assert logits.shape == (2, 5, 14)
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(2, 5))  # log-probabilities
    want = -logits.gather(2, y[..., None]).mean()
    torch.testing.assert_close(loss, want)
    with pytest.raises(ValueError, match=r"cutoffs: each must lie in \(0, vocabulary size 5"):
        wordlm.build_model(5, config)
    corpus = wordlm.text_corpus([corpus_files / "a.txt"], corpus_files / "valid.txt")
    tiny = wordlm.WordLMConfig(**{**TINY.__dict__, "tie": False, "cutoffs": [5]})
    metrics = wordlm.train(
        corpus, tiny, TrainConfig(steps=40, lr=1e-2, progress=False), tmp_path / "a"
    )
    assert metrics["val_perplexity"] < 12
    run = WORDLM.load(tmp_path / "a")
    model, tok, meta = run.model, run.tokenizer, run.meta
    assert meta["task_config"]["model"]["cutoffs"] == [5]
    assert len(wordlm.complete(model, tok, "the cat", k=3)) == 3


def test_train_resume_exactly_then_complete_and_generate(tmp_path, corpus_files):
    corpus = wordlm.text_corpus([corpus_files / "a.txt"], corpus_files / "valid.txt")
    config = TrainConfig(steps=12, eval_every=4, lr=1e-2, progress=False)
    metrics = wordlm.train(corpus, TINY, config, tmp_path / "whole")
    assert metrics["val_perplexity"] == pytest.approx(math.exp(metrics["val_loss"]))
    assert metrics["val_perplexity"] < 12  # the vocabulary has 14 tokens; it learned a little
    wordlm.train(corpus, TINY, config, tmp_path / "paused", until=5)
    wordlm.resume(tmp_path / "paused")
    a = WORDLM.load(tmp_path / "whole", "last").model
    b = WORDLM.load(tmp_path / "paused", "last").model
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    run = WORDLM.load(tmp_path / "whole")
    model, tok = run.model, run.tokenizer
    ranked = wordlm.complete(model, tok, "The cat sat on the", k=3)
    assert len(ranked) == 3 and all(w not in ("<pad>", "<unk>") for w, _ in ranked)
    probs = [p for _, p in ranked]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    text = "".join(wordlm.generate(model, tok, "the dog", 12, Sampling(0.8, seed=3)))
    assert text == "".join(wordlm.generate(model, tok, "the dog", 12, Sampling(0.8, seed=3)))
    assert text.startswith(" ") and "<unk>" not in text
    scored = wordlm.score_documents(model, tok, [["the cat sat on the mat ."]])
    assert scored["tokens"] == 8 and scored["unk_rate"] == 0
    _the_run_answers_for_its_model(run, corpus_files)


def _the_run_answers_for_its_model(run, corpus_files):
    """The Run: next words, generation, perplexity, streams and graphs of one model."""
    assert (
        run.task == "wordlm"
        and run.config == TINY
        and run.describe()["vocabulary"] == len(run.tokenizer) == 13
    )
    (row,) = run.predict(["The cat sat on the"], top_k=3)
    ranked = wordlm.complete(run.model, run.tokenizer, "The cat sat on the", k=3)
    assert row == {"text": "The cat sat on the", "next": [{"word": w, "p": p} for w, p in ranked]}
    assert [len(r["next"]) for r in run.predict(["a", "the dog"])] == [5, 5]
    assert "".join(run.generate("the dog", 5, Sampling(0.8, seed=3))) == "".join(
        wordlm.generate(run.model, run.tokenizer, "the dog", 5, Sampling(0.8, seed=3))
    )
    assert run.finish("the cat", 3, 2) == wordlm.finish(run.model, run.tokenizer, "the cat", 3, 2)
    held = run.evaluate()
    assert held["data"] == "valid split (the run has no test split)"
    assert run.evaluate(split="valid") == held | {"data": "valid split"}
    with pytest.raises(ValueError, match="this run's corpus has no test split"):
        run.evaluate(split="test")
    with pytest.raises(ValueError, match="split must be 'valid' or 'test', got 'train'"):
        run.evaluate(split="train")
    scored = run.evaluate(corpus_files / "valid.txt")
    assert scored["data"] == str(corpus_files / "valid.txt")
    assert scored["perplexity"] == pytest.approx(held["perplexity"])  # the same sentences
    ids = torch.tensor([EOS_ID, *run.tokenizer.encode("the cat sat")])
    stream = run.open_stream()
    first = stream.feed(ids[:2])
    rest = run.restore_stream(stream.to_bytes()).feed(ids[2:])
    whole = torch.log_softmax(run.model(ids[None])[0][0], -1)
    torch.testing.assert_close(torch.cat([first, rest]), whole)
    found = run.graphs("step")
    assert found.mode == "step" and found.graphs[0].name == "model-step"
    assert found.real["model-step"][0].tolist() == [[EOS_ID]]
    ids, pieces = run.explain_pieces("the cat")
    assert ids[0] == EOS_ID and pieces[0] == "<eos> " and len(pieces) == 3


def test_evaluation_batches_reach_the_model_device(monkeypatch):
    model = wordlm.build_model(20, TINY)
    ids, starts = torch.randint(20, (300,)), torch.tensor([100])
    evaluate = lambda: wordlm.evaluate_ids(model, ids, doc_starts=starts)  # noqa: E731
    assert_batches_reach_model_device(monkeypatch, model, evaluate)


def test_a_changed_corpus_refuses_to_resume(tmp_path, corpus_files):
    path = tmp_path / "t.txt"
    path.write_text("\n".join(SENTENCES) + "\n")
    corpus = wordlm.text_corpus([path])
    wordlm.train(corpus, TINY, TrainConfig(steps=2, eval_every=2, progress=False), tmp_path / "r")
    path.write_text("\n".join(SENTENCES[:-1]) + "\n")
    with pytest.raises(ValueError, match="changed since this run started"):
        wordlm.resume(tmp_path / "r", steps=4)


@pytest.mark.skipif(not BROWN.is_dir(), reason="needs ../shared/data/brown")
def test_brown_corpus_is_split_by_file_and_untagged():
    corpus = wordlm.brown_corpus(BROWN)
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (414, 45, 41)
    assert corpus.train[0][0].startswith("The Fulton County Grand Jury said")
    assert corpus.pretokenized and "/" not in corpus.train[0][0].split()[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokenizer": "spacy"}, "tokenizer must be one of auto, word, whitespace, bpe"),
        ({"embed_dropout": 1.0}, r"embed_dropout must be in \[0, 1\)"),
        ({"tie": "yes"}, "tie must be True or False"),
        ({"hidden": 0}, "hidden"),
        ({"cutoffs": (5, 3), "tie": False}, "cutoffs must be increasing positive integers"),
        ({"cutoffs": (5,)}, r"need tie=False \(--no-tie\)"),
    ],
)
def test_bad_configs(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        wordlm.WordLMConfig(**kwargs)


def test_finish_ranks_sentence_endings_by_their_probability(tmp_path, corpus_files):
    corpus = wordlm.text_corpus([corpus_files / "a.txt"], corpus_files / "valid.txt")
    config = TrainConfig(steps=12, eval_every=12, lr=1e-2, progress=False)
    wordlm.train(corpus, TINY, config, tmp_path / "run")
    run = WORDLM.load(tmp_path / "run")
    model, tok = run.model, run.tokenizer
    endings = wordlm.finish(model, tok, "the cat", beam=4, nbest=3, max_len=6)
    assert 1 <= len(endings) <= 3
    for text, logprob in endings:
        finished = not text.endswith(" ...")
        ids = [EOS_ID, *tok.ids(("the cat" + text.removesuffix(" ...")).split())]
        z = model(torch.tensor([ids]))[0][0].detach().clone()
        z[:, [0, 1]] = float("-inf")  # <pad> and <unk> are never proposed
        logp = z.log_softmax(-1)  # row j predicts the token after ids[j]
        predicted = ids[3:] + ([EOS_ID] if finished else [])
        expected = sum(float(logp[2 + i, t]) for i, t in enumerate(predicted))
        assert logprob == pytest.approx(expected, abs=1e-4)
    (greedy,) = wordlm.finish(model, tok, "the cat", beam=1, nbest=1, max_len=6)
    sampled = "".join(wordlm.generate(model, tok, "the cat", 7, Sampling(0.0)))
    assert sampled.startswith(greedy[0].removesuffix(" ..."))
