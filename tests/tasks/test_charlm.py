"""Character LM: TBPTT state carry, document resets, training, generation."""

from __future__ import annotations

import math

import pytest
import torch

from elman.data.stream import TokenStream
from elman.data.text import bundled_corpus_path, read_text
from elman.decode import Sampling
from elman.tasks.lm import charlm
from elman.tasks.lm.run import CHARLM
from elman.train import TrainConfig
from tests.helpers import assert_batches_reach_model_device

TINY = charlm.CharLMConfig(
    cell="gru", embedding=8, hidden=16, layers=2, dropout=0.0, batch_size=4, seq_len=16
)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "excerpt.txt"
    path.write_text(read_text(bundled_corpus_path())[:6000], encoding="utf-8")
    return path


@pytest.mark.parametrize("cell", ["lstm", "gru", "ln-lstm", "rnn"])
def test_carrying_state_across_chunks_equals_one_long_forward(cell):
    torch.manual_seed(0)
    model = charlm.CharLM(
        30, charlm.CharLMConfig(cell=cell, embedding=4, hidden=6, dropout=0.0)
    ).double()
    stream = TokenStream(torch.randint(30, (401,)), batch_size=3, seq_len=20)
    state, pieces = None, []
    for chunk in stream:
        logits, state = model(chunk.x, state)
        pieces.append(logits)
    whole, _ = model(torch.cat([c.x for c in stream], dim=1))
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole)


def test_document_starts_reset_the_state_mid_chunk():
    torch.manual_seed(0)
    model = charlm.CharLM(
        10, charlm.CharLMConfig(cell="lstm", embedding=4, hidden=6, dropout=0.0)
    ).double()
    x = torch.randint(10, (2, 12))
    starts = torch.zeros(2, 12, dtype=torch.bool)
    starts[0, 5] = True  # row 0 begins a new document at step 5
    logits, _ = model(x, None, starts)
    fresh, _ = model(x[:1, 5:])
    torch.testing.assert_close(logits[0, 5:], fresh[0])
    torch.testing.assert_close(logits[1], model(x[1:])[0][0])  # row 1 untouched


def test_train_generate_evaluate_round_trip(tmp_path, text_file):
    train = TrainConfig(steps=30, eval_every=10, lr=1e-2, progress=False)
    metrics = charlm.train(text_file, TINY, train, tmp_path)
    assert 0 < metrics["val_loss"] < 3.5  # uniform over the vocabulary would be ~4
    run = CHARLM.load(tmp_path)
    model, vocab, meta = run.model, run.vocab, run.meta
    assert meta["task_config"]["source"]["chars"] == 6000
    a = "".join(charlm.generate(model, vocab, "ROMEO:", 50, Sampling(0.8, seed=1)))
    b = "".join(charlm.generate(model, vocab, "ROMEO:", 50, Sampling(0.8, seed=1)))
    assert a == b and len(a) == 50 and set(a) <= set(vocab.chars)
    greedy = "".join(charlm.generate(model, vocab, "the", 20, Sampling(temperature=0)))
    assert greedy == "".join(charlm.generate(model, vocab, "the", 20, Sampling(temperature=0)))
    with pytest.raises(ValueError, match="lacks"):
        next(charlm.generate(model, vocab, "ROMEO€", 5))
    assert len("".join(charlm.generate(model, vocab, "ROMEO€", 5, unknown="skip"))) == 5
    _the_run_answers_for_its_model(run, tmp_path, text_file)


def _the_run_answers_for_its_model(run, tmp_path, text_file):
    """The Run: generation, evaluation, streams, graphs and description of one model."""
    assert run.task == "charlm" and run.which == "best" and run.config == TINY
    assert "".join(run.generate("ROMEO:", 9, Sampling(0.8, seed=1))) == "".join(
        charlm.generate(run.model, run.vocab, "ROMEO:", 9, Sampling(0.8, seed=1))
    )
    held = run.evaluate()
    assert held["data"] == "validation split" and held["chars"] == 600 and held["step"] == 30
    assert held["bits_per_char"] == pytest.approx(held["nats_per_char"] / math.log(2))
    other = run.evaluate(text_file)
    assert other["data"] == str(text_file) and other["chars"] == 6000
    ids = run.vocab.encode("KING:")
    stream = run.open_stream()
    first = stream.feed(ids[:2])
    again = run.restore_stream(stream.to_bytes())
    whole = torch.log_softmax(run.model(ids[None])[0][0], -1)
    torch.testing.assert_close(torch.cat([first, again.feed(ids[2:])]), whole)
    with pytest.raises(ValueError, match="options: a language stream takes none"):
        run.open_stream(source="x")
    described = run.describe()
    assert described["vocabulary"] == len(run.vocab) and described["hidden_size"] == 16
    for mode, steps in (("sequence", 64), ("step", 1), (None, 64)):
        found = run.graphs(mode)
        assert found.mode == (mode or "sequence") and [g.name for g in found.graphs] == [
            f"model-{mode or 'sequence'}"
        ]
        x = found.real[found.graphs[0].name][0]
        assert x.shape == (1, steps) and torch.equal(x[0], charlm.validation_ids(tmp_path)[:steps])
    with pytest.raises(ValueError, match="does not predict; `elman generate DIR"):
        run.predict(["KING"])


def test_evaluation_batches_reach_the_model_device(monkeypatch):
    torch.manual_seed(0)
    model = charlm.CharLM(10, TINY)
    ids = torch.randint(10, (200,))
    assert_batches_reach_model_device(monkeypatch, model, lambda: charlm.evaluate_ids(model, ids))
    assert model.training  # the helper puts the mode back


def test_resume_continues_exactly(tmp_path, text_file):
    train = TrainConfig(steps=12, eval_every=4, lr=1e-2, progress=False)
    config = charlm.CharLMConfig(**{**TINY.__dict__, "dropout": 0.1})
    charlm.train(text_file, config, train, tmp_path / "whole")
    charlm.train(text_file, config, train, tmp_path / "paused", until=6)
    charlm.resume(tmp_path / "paused")
    a = CHARLM.load(tmp_path / "whole", "last").model
    b = CHARLM.load(tmp_path / "paused", "last").model
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "transformer"}, "cell must be one of rnn, rnn-relu, lstm, gru, ln-lstm, ln-gru"),
        ({"hidden": 0}, "hidden must be a positive integer, got 0"),
        ({"dropout": 1.2}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_model_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        charlm.CharLMConfig(**kwargs)


def test_corpus_shorter_than_one_batch(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("To be, or not to be", encoding="utf-8")
    with pytest.raises(ValueError, match="corpus too short"):
        charlm.train(path, TINY, TrainConfig(steps=1, progress=False), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_several_files_are_documents_whose_boundaries_reset_the_state(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("abcab" * 200, encoding="utf-8")
    b.write_text("cabca" * 200, encoding="utf-8")
    text, starts, source = charlm.text_source([a, b])
    assert starts == [1000] and source["paths"] == [str(a), str(b)]
    config = charlm.CharLMConfig(
        cell="lstm",
        embedding=4,
        hidden=6,
        layers=1,
        dropout=0.0,
        batch_size=2,
        seq_len=50,
        valid_fraction=0.1,
    )
    task = charlm.CharLMTask(text, config, doc_starts=starts)
    assert task.train_starts.tolist() == [1000] and task.valid_starts.tolist() == []
    flagged = [
        (i, c.starts.nonzero().tolist())
        for i, c in enumerate(task.batches(0))
        if c.starts is not None
    ]
    row_len = (task.train_ids.numel() - 1) // 2  # 1000 = row 1, step 1000 - row_len
    assert flagged == [((1000 - row_len) // 50, [[1, (1000 - row_len) % 50]])]
    metrics = charlm.train(
        [a, b], config, TrainConfig(steps=4, eval_every=2, progress=False), tmp_path / "run"
    )
    assert metrics["val_loss"] > 0
    charlm.resume(tmp_path / "run", steps=6)
    b.write_text("changed", encoding="utf-8")
    with pytest.raises(charlm.CheckpointError, match="changed since this run started"):
        charlm.resume(tmp_path / "run", steps=8)
