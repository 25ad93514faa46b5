"""The speech task end to end on a tiny synthetic corpus: a model that overfits a few
utterances to CER 0, the CLI's train, transcribe, evaluate and explain, streams equal to the
whole utterance, fusion with a character LM, and clear errors for bad input."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from elman.cli import main
from elman.data.speech.audio import write_wav
from elman.data.speech.manifests import Utterance, read_manifest
from elman.tasks.asr.data import hold_out
from elman.tasks.asr.decoding import CharLMScorer, Decoding, WordLMScorer
from elman.tasks.asr.stream import AsrStream
from elman.tasks.finetune import source_run
from elman.tasks.registry import load_run
from tests.speech import tiny_corpus, tiny_run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return tiny_corpus(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("asr-runs")
    return {
        "offline": tiny_run(corpus, root / "offline"),
        "streaming": tiny_run(corpus, root / "streaming", "--no-bidirectional", "--layers", "2"),
    }


def _manifest(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("path\ttranscript\n" + "".join(f"{a}\t{t}\n" for a, t in rows))
    return path


def test_a_tiny_model_overfits_a_few_utterances_to_cer_0(corpus, tmp_path):
    shortest = sorted(read_manifest(corpus / "train.tsv"), key=lambda u: len(u.text))[:3]
    few = _manifest(tmp_path / "few.tsv", [(str(u.audio), u.text) for u in shortest])
    out = tmp_path / "overfit"
    args = ["train", "asr", "--train", str(few), "--valid", str(few), "--out", str(out),
            "--hidden", "64", "--layers", "1", "--batch-size", "3", "--lr", "5e-3",
            "--dropout", "0", "--no-augment", "--steps", "300", "--eval-every", "100",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    scores = load_run(out).evaluate(few)
    assert scores["cer"] == 0.0 and scores["wer"] == 0.0, scores


def test_utterances_too_short_for_their_transcripts_are_left_out_and_counted(
    corpus, tmp_path, capsys
):
    out = tmp_path / "stacked"
    tiny_run(corpus, out, "--stack", "6", steps=1)  # 60 ms frames: the fast talkers' are few
    train = len(read_manifest(corpus / "train.tsv"))
    err = capsys.readouterr().err
    said = re.search(rf"(\d+) of {train} training utterances are too short", err)
    assert said and 0 < int(said[1]) < train


def test_init_from_starts_from_every_weight_of_an_asr_run_and_refuses_another_shape(
    corpus, runs, tmp_path, capsys, monkeypatch
):
    source = load_run(runs["streaming"])
    out = tmp_path / "more"
    args = ["train", "asr", "--corpus", str(corpus), "--out", str(out), "--init-from",
            str(runs["streaming"]), "--steps", "1", "--lr", "1e-9", "--eval-every", "1",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0  # no sizes given: the source's are the defaults
    run = load_run(out, "last")
    assert (run.config.hidden, run.config.layers, run.config.bidirectional) == (16, 2, False)
    for name, weight in source.model.state_dict().items():  # one step of 1e-9 from there
        assert torch.allclose(run.model.state_dict()[name], weight, atol=1e-7), name
    assert run.meta["task_config"]["init_from"]["path"] == str(runs["streaming"].resolve())
    capsys.readouterr()
    wrong = [*args[:5], str(tmp_path / "wrong"), *args[6:], "--hidden", "32"]
    assert main(wrong) == 2
    err = capsys.readouterr().err
    assert "--init-from: the model differs" in err and "hidden 32" in err
    assert not (tmp_path / "wrong").exists()
    monkeypatch.setattr("elman.tasks.registry.load_run", lambda p: SimpleNamespace(task="charlm"))
    with pytest.raises(ValueError, match=r"an asr starts from an asr run; .* holds a charlm"):
        source_run(tmp_path, "asr")


def test_train_transcribe_evaluate_and_explain_from_the_cli(corpus, runs, capsys, tmp_path):
    audio = sorted((corpus / "test").glob("*.wav"))[:2]
    assert main(["transcribe", str(runs["offline"]), *map(str, audio), "--timings"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["audio"] for r in rows] == list(map(str, audio))
    for r in rows:
        assert r["text"] == " ".join(r["text"].split())  # normalised spacing
        assert [w for w, _, _ in r["words"]] == r["text"].split()
        assert all(0 <= a < b for _, a, b in r["words"])
    assert main(["evaluate", str(runs["offline"]), "--beam", "4"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["utterances"] == 4 and scores["data"] == "test split"
    assert scores["cer"] >= 0 and scores["decoding"] == {"search": "prefix beam", "beam": 4}
    png = tmp_path / "p.png"
    assert main(["explain", str(runs["offline"]), str(audio[0]), "--png", str(png)]) == 0
    assert png.stat().st_size > 1000 and json.loads(capsys.readouterr().out)["png"] == str(png)


def test_a_stream_fed_chunks_equals_the_whole_utterance(corpus, runs):
    run = load_run(runs["streaming"])
    path = sorted((corpus / "test").glob("*.wav"))[0]
    samples, whole = run.samples_of(path), run.posteriors(path)
    stream, start, g = run.open_stream(), 0, torch.Generator().manual_seed(0)
    while start < len(samples):
        n = int(torch.randint(0, 4000, (1,), generator=g))
        result = stream.feed(samples[start : start + n])
        start += n
        stream = AsrStream.from_bytes(run, stream.to_bytes())  # as a server keeps it
    assert torch.allclose(stream.log_probs, whole, atol=1e-5)
    assert result["text"] == run.transcribe([path])[0]["text"]
    assert result["frames"] == whole.shape[0] and stream.words() == run.word_timings(whole)
    with pytest.raises(ValueError, match="bidirectional speech model reads the whole"):
        load_run(runs["offline"]).open_stream()


def test_fusion_with_a_character_lm(corpus, runs, tmp_path):
    text = "\n".join(u.text for u in read_manifest(corpus / "train.tsv"))
    text += "\nthe quick brown fox jumps over the lazy dog's back\n"  # every letter
    (tmp_path / "lm.txt").write_text(text * 3)
    lm = tmp_path / "lm"
    args = ["train", "charlm", str(tmp_path / "lm.txt"), "--out", str(lm), "--hidden", "16",
            "--embedding", "8", "--steps", "20", "--eval-every", "20", "--seq-len", "32",
            "--batch-size", "4", "--sample-length", "0", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    run = load_run(runs["offline"])
    scorer = CharLMScorer(load_run(lm), run.config.symbols)
    probs, _ = scorer._entry(scorer.score((), 5)[1])  # after one symbol
    assert sum(torch.tensor(probs).exp().tolist()) == pytest.approx(1.0, abs=1e-5)
    log_probs = run.posteriors(sorted((corpus / "test").glob("*.wav"))[0])
    silent = Decoding.of(beam=8, lm=lm, lm_weight=0.0, word_bonus=0.0)
    assert silent.text(log_probs, run.config.alphabet) == Decoding(beam=8).text(
        log_probs, run.config.alphabet
    )  # weight 0: the LM changes nothing
    fused = Decoding.of(beam=8, lm=lm).describe()
    assert fused["lm"] == str(lm) and fused["lm_weight"] == 0.5
    with pytest.raises(ValueError, match="expected a charlm run"):
        Decoding.of(beam=8, lm=runs["offline"])


def test_fusion_with_a_word_lm_scores_each_word_when_it_ends(corpus, runs, tmp_path, capsys):
    lines = [u.text for u in read_manifest(corpus / "train.tsv")]
    (tmp_path / "words.txt").write_text("\n".join(lines * 3) + "\n")
    lm = tmp_path / "wordlm"
    args = ["train", "wordlm", str(tmp_path / "words.txt"), "--tokenizer", "whitespace",
            "--out", str(lm), "--hidden", "16", "--embedding", "16", "--steps", "20",
            "--eval-every", "20", "--seq-len", "8", "--batch-size", "4", "--sample-length", "0",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    run, word_run = load_run(runs["offline"]), load_run(lm)
    scorer = WordLMScorer(word_run, run.config.symbols)
    ids = {c: run.config.symbols.index(c) + 1 for c in run.config.symbols}
    known = next(w for w in lines[0].split() if w in scorer.index)
    state, total = scorer.initial(), 0.0
    for c in known:  # spelling scores nothing until the word ends
        logp, state = scorer.score(state, ids[c])
        assert logp == 0.0
    logp, state = scorer.score(state, ids[" "])
    first = scorer._next(())
    assert logp == pytest.approx(float(first[scorer.index[known]])) and logp < 0
    assert first.exp().sum().item() == pytest.approx(1.0, abs=1e-6)
    total = scorer.final(state)  # nothing spelled: the sentence end alone
    assert total == pytest.approx(float(scorer._next((scorer.index[known],))[2]))
    unknown, _ = scorer.score(((), "qxzj"), ids[" "])
    assert unknown == pytest.approx(float(first[1]) - math.log(len(scorer.index)))
    wav = str(sorted((corpus / "test").glob("*.wav"))[0])
    log_probs = run.posteriors(wav)
    silent = Decoding.of(beam=8, word_lm=lm, word_lm_weight=0.0, word_bonus=0.0)
    assert silent.text(log_probs, run.config.alphabet) == Decoding(beam=8).text(
        log_probs, run.config.alphabet
    )  # weight 0: the LM changes nothing
    capsys.readouterr()
    args = ["transcribe", str(runs["offline"]), wav, "--word-lm", str(lm), "--word-lm-weight", "1"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["text"] is not None
    assert main(["evaluate", str(runs["offline"]), "--word-lm", str(lm), "--beam", "4"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["decoding"]["word_lm"] == str(lm) and scores["decoding"]["word_lm_weight"] == 0.5
    (tmp_path / "lexicon.txt").write_text("\n".join({w for t in lines for w in t.split()}))
    args = ["evaluate", str(runs["offline"]), "--word-lm", str(lm), "--beam", "4", "--lexicon",
            str(tmp_path / "lexicon.txt"), "--lexicon-penalty", "3"]  # fmt: skip
    assert main(args) == 0
    scores = json.loads(capsys.readouterr().out)["decoding"]
    assert scores["lexicon_penalty"] == 3.0 and scores["lexicon_words"] > 1
    args = ["transcribe", str(runs["offline"]), wav, "--lexicon", str(tmp_path / "lexicon.txt")]
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["text"] is not None
    with pytest.raises(ValueError, match="expected a wordlm run"):
        Decoding.of(beam=8, word_lm=runs["offline"])
    with pytest.raises(ValueError, match="word_lm_weight must be >= 0"):
        Decoding(beam=8, word_lm=word_run, word_lm_weight=-1)
    pieces = SimpleNamespace(backward=False, tokenizer=SimpleNamespace(kind="bpe"), path=lm)
    with pytest.raises(ValueError, match="reads BPE pieces; fusion scores whole words"):
        WordLMScorer(pieces, run.config.symbols)
    with pytest.raises(ValueError, match="reads text backwards"):
        WordLMScorer(SimpleNamespace(backward=True, path=lm), run.config.symbols)


def test_bad_input_is_a_clear_error(corpus, runs, tmp_path, capsys):
    bad = _manifest(tmp_path / "bad.tsv", [(str(next((corpus / "test").glob("*.wav"))), "café 3")])
    assert main(["evaluate", str(runs["offline"]), str(bad)]) == 2
    assert "characters '3é' are outside the alphabet" in capsys.readouterr().err
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    assert main(["transcribe", str(runs["offline"]), str(junk)]) == 2
    assert "could not be decoded" in capsys.readouterr().err
    long = tmp_path / "long.wav"
    write_wav(long, torch.zeros(16000 * 31), 16000)
    assert main(["transcribe", str(runs["offline"]), str(long)]) == 2
    assert "over the limit max_seconds=30.0" in capsys.readouterr().err
    assert main(["transcribe", str(runs["offline"]), str(long), "--lm-weight", "1"]) == 2
    assert "--lm-weight weighs a character language model" in capsys.readouterr().err
    assert main(["transcribe", str(runs["offline"]), str(long), "--word-bonus", "1"]) == 2
    assert "--word-bonus goes with a language model" in capsys.readouterr().err
    assert main(["transcribe", str(runs["offline"]), str(long), "--lexicon-penalty", "1"]) == 2
    assert "--lexicon-penalty goes with a lexicon" in capsys.readouterr().err
    assert main(["transcribe", str(runs["offline"]), str(long), "--lexicon", "nope.txt"]) == 2
    assert "lexicon: nope.txt is not a file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs a beam search, got beam=1"):
        Decoding(beam=1, lm=object())
    assert main(["export", str(runs["offline"]), "--format", "onnx", "--mode", "step"]) == 2
    assert "bidirectional model cannot" in capsys.readouterr().err
    out = tmp_path / "none"
    assert main(["train", "asr", "--corpus", str(tmp_path), "--out", str(out)]) == 2
    assert "has no train.tsv" in capsys.readouterr().err and not out.exists()


def test_validation_without_a_manifest_holds_out_whole_speakers():
    rows = [Utterance(Path(f"{i}.wav"), "a", f"s{i % 5}") for i in range(50)]
    kept, held = hold_out(rows, 0.2, seed=0)
    assert len(held) == 10 and not {u.speaker for u in kept} & {u.speaker for u in held}
    anonymous = [Utterance(Path(f"{i}.wav"), "a") for i in range(50)]
    kept, held = hold_out(anonymous, 0.1, seed=0)
    assert len(held) == 5 and len(kept) == 45


def test_onnx_graphs_match_the_models_the_streaming_one_with_its_state(runs, capsys):
    pytest.importorskip("onnxruntime")
    for name, modes in (("offline", ("sequence",)), ("streaming", ("sequence", "step"))):
        for mode in modes:
            assert main(["export", str(runs[name]), "--format", "onnx", "--mode", mode]) == 0
            done = json.loads(capsys.readouterr().out)
            assert done["max_abs_diff"]["real"] < 1e-4, (name, mode, done)
    graph = runs["streaming"] / "model-step.onnx"
    import onnx

    names = [i.name for i in onnx.load(str(graph)).graph.input]
    assert names[0] == "x" and len(names) == 3  # x, h0, c0: the state goes in and out
