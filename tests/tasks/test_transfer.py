"""Pretraining and fine-tuning: an LM run initialises a classifier (its vocabulary,
embeddings and encoder, compared by value) or another LM (every weight), records where it
came from, resumes exactly, and refuses what does not fit with the reason."""

from __future__ import annotations

import csv
import random

import pytest
import torch

from elman.cli import main
from elman.data.tokenize import PAD_ID, UNK_ID
from elman.tasks.classify import task as classify
from elman.tasks.lm import charlm, wordlm
from elman.tasks.registry import load_run
from elman.tasks.transfer import architecture, load_pretrained, tokenizer_of
from elman.train import TrainConfig
from elman.train.checkpoint import load_checkpoint, read_meta

GOOD = ["good", "great", "fine", "lovely", "nice", "superb"]
BAD = ["bad", "awful", "poor", "nasty", "dull", "horrid"]
FILL = ["the", "movie", "food", "was", "and", "it", "a", "very", "service", "plot"]
TINY = dict(cell="lstm", embedding=8, hidden=8, layers=1, batch_size=4, seq_len=8)


def _sentences(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = [*rng.sample(FILL, 4), rng.choice(GOOD if label == "pos" else BAD)]
        rng.shuffle(words)
        out.append((" ".join(words), label))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    text = root / "text.txt"
    text.write_text("\n".join(s for s, _ in _sentences(200, 1)) + "\n")
    table = root / "labelled.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(_sentences(40, 2))
    config = wordlm.WordLMConfig(**TINY, tie=False, min_freq=1)
    for name, reverse in (("fw", False), ("bw", True)):
        corpus = wordlm.text_corpus([text])
        cfg = wordlm.WordLMConfig(**(vars_of(config) | {"reverse": reverse}))
        wordlm.train(corpus, cfg, TrainConfig(steps=3, eval_every=3, progress=False), root / name)
    ccfg = charlm.CharLMConfig(**TINY)
    charlm.train([text], ccfg, TrainConfig(steps=2, eval_every=2, progress=False), root / "ch")
    source = {"kind": "table", "train": str(table), "valid_fraction": 0.25, "seed": 0}
    return root, source


def vars_of(config) -> dict:
    return {k: getattr(config, k) for k in config.__dataclass_fields__}


def _classifier(source, lms, **overrides):
    fields = architecture(lms) | overrides
    config = classify.ClassifyConfig(**fields, batch_size=4)
    task = classify.task_from_source(source, config, 0, tokenizer=tokenizer_of(lms[0]))
    return task


def test_a_forward_and_a_backward_lm_fill_exactly_the_embedding_and_both_directions(data):
    root, source = data
    lms = load_pretrained([root / "bw", root / "fw"])  # any order: sorted forward first
    assert [lm.backward for lm in lms] == [False, True]
    torch.manual_seed(0)
    task = _classifier(source, lms)
    fresh = {k: v.clone() for k, v in task.model.state_dict().items()}
    task.initialise(lms)
    got = task.model.state_dict()
    fw, bw = load_run(root / "fw").model, load_run(root / "bw").model
    assert task.encoder.tokenizer is lms[0].tokenizer  # the word LM's vocabulary, taken over
    assert torch.equal(got["embed.weight"][PAD_ID], torch.zeros(8))  # padding stays zero
    assert torch.equal(got["embed.weight"][1:], fw.embed.weight[1:])
    for name, value in fw.rnn.state_dict().items():
        assert torch.equal(got["rnn." + name], value)
        assert torch.equal(got["rnn." + name + "_reverse"], bw.rnn.state_dict()[name])
    untouched = [k for k in got if not k.startswith(("embed.", "rnn."))]
    assert untouched and all(torch.equal(got[k], fresh[k]) for k in untouched)
    record = task.describe()["init_from"]
    assert [r["path"] for r in record["runs"]] == [str(root / "fw"), str(root / "bw")]
    assert record["embedding_rows"] == len(lms[0].tokens) - 1 and record["coverage"] > 0.9
    assert len(record["recurrent"]) == 8  # 4 tensors x 2 directions


def test_a_character_lm_maps_its_characters_into_a_character_classifier(data):
    root, source = data
    lms = load_pretrained([root / "ch"])
    task = _classifier(source, lms, bidirectional=False)
    task.initialise(lms)
    tok, lm = task.encoder.tokenizer, lms[0]
    assert tok.kind == "char" and set(tok.tokens[3:]) == set(lm.tokens)
    weight = task.model.embed.weight
    for i, ch in enumerate(tok.tokens[3:], start=3):
        assert torch.equal(weight[i], lm.embedding[lm.tokens.index(ch)])
    assert torch.allclose(weight[UNK_ID], lm.embedding.mean(0))  # no LM row: the mean one


def test_a_fine_tuned_classifier_records_its_start_and_resumes_bit_exactly(data, tmp_path):
    root, source = data
    config = classify.ClassifyConfig(**architecture(load_pretrained([root / "fw"])), batch_size=4)
    tc = TrainConfig(steps=4, eval_every=2, progress=False, optimizer="adamw")
    classify.train(source, config, tc, tmp_path / "a", init_from=[root / "fw"])
    classify.train(source, config, tc, tmp_path / "b", until=2, init_from=[root / "fw"])
    classify.resume(tmp_path / "b")
    a, _ = load_checkpoint(tmp_path / "a" / "last.safetensors", "classify")
    b, _ = load_checkpoint(tmp_path / "b" / "last.safetensors", "classify")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    meta = read_meta(tmp_path / "b" / "last.safetensors")
    assert meta["task_config"]["init_from"]["runs"][0]["path"] == str(root / "fw")


@pytest.mark.parametrize(
    ("runs", "overrides", "message"),
    [
        (["fw"], {"hidden": 16}, "hidden 16 \\(the LM's is 8\\)"),
        (["fw"], {"layers": 2}, "layers 2 \\(the LM has 1\\)"),
        (["fw"], {"bidirectional": True}, "needs a forward and a backward LM"),
        (["bw"], {}, "reads forwards: give it one forward LM"),
        (["fw", "bw"], {"layers": 2}, "use --layers 1 or --no-bidirectional"),
    ],
)
def test_a_classifier_that_does_not_fit_the_lm_is_refused(data, runs, overrides, message):
    root, source = data
    lms = load_pretrained([root / r for r in runs])
    task = _classifier(source, lms, **overrides)
    with pytest.raises(ValueError, match=message):
        task.initialise(lms)


def test_two_lms_reading_the_same_way_or_a_non_lm_are_refused(data, tmp_path):
    root, source = data
    with pytest.raises(ValueError, match=r"one forward and one backward.*both .* read forward"):
        load_pretrained([root / "fw", root / "fw"])
    with pytest.raises(ValueError, match="share a vocabulary"):
        load_pretrained([root / "ch", root / "bw"])
    config = classify.ClassifyConfig(**architecture(load_pretrained([root / "fw"])), batch_size=4)
    tc = TrainConfig(steps=1, eval_every=1, progress=False)
    classify.train(source, config, tc, tmp_path / "cls", init_from=[root / "fw"])
    with pytest.raises(ValueError, match=r"needs a language-model run.*holds a classify"):
        load_pretrained([tmp_path / "cls"])


def test_a_vocabulary_that_does_not_map_is_refused(data, tmp_path):
    root, _ = data
    table = tmp_path / "other.csv"
    rows = [(f"zq{i} xv{i} wk{i}", "a" if i % 2 else "b") for i in range(20)]
    with table.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    source = {"kind": "table", "train": str(table), "valid_fraction": 0.25, "seed": 0}
    lms = load_pretrained([root / "fw"])
    task = _classifier(source, lms, bidirectional=False)
    with pytest.raises(ValueError, match="does not map the training texts: it knows only 0%"):
        task.initialise(lms)


def test_a_language_model_starts_from_another_with_every_weight(data, tmp_path):
    root, _ = data
    run = load_run(root / "fw")
    text = tmp_path / "target.txt"
    text.write_text("the food was superb\nthe plot was dull\n" * 20)
    tc = TrainConfig(steps=1, eval_every=1, progress=False, lr=1e-30)  # moves nothing visible
    wordlm.train(wordlm.text_corpus([text]), run.config, tc, tmp_path / "ft", init_from=root / "fw")
    tuned = load_run(tmp_path / "ft", "last")
    assert tuned.tokenizer == run.tokenizer
    for k, v in run.model.state_dict().items():
        torch.testing.assert_close(tuned.model.state_dict()[k], v, rtol=0, atol=1e-20)
    assert read_meta(tmp_path / "ft" / "last.safetensors")["task_config"]["init_from"]
    other = wordlm.WordLMConfig(**(vars_of(run.config) | {"hidden": 12}))
    with pytest.raises(ValueError, match="differs from the LM's: hidden 12"):
        wordlm.train(wordlm.text_corpus([text]), other, tc, tmp_path / "x", init_from=root / "fw")
    with pytest.raises(ValueError, match="a charlm starts from a charlm run"):
        charlm.train([text], charlm.CharLMConfig(), tc, tmp_path / "y", init_from=root / "fw")
    odd = tmp_path / "odd.txt"
    odd.write_text("¤¤ the food\n" * 30)
    with pytest.raises(ValueError, match="character\\(s\\) the LM never saw"):
        ch = load_run(root / "ch").config
        charlm.train([odd], ch, tc, tmp_path / "z", init_from=root / "ch")


def test_the_command_line_takes_the_lm_sizes_and_refuses_what_contradicts_them(
    data, tmp_path, capsys
):
    root, source = data
    base = ["train", "classify", "--train", source["train"], "--steps", "2", "--no-progress"]
    lms = [str(root / "fw"), str(root / "bw")]
    assert main([*base, "--init-from", *lms, "--out", str(tmp_path / "c")]) == 0
    meta = read_meta(tmp_path / "c" / "last.safetensors")
    model = meta["task_config"]["model"]
    assert (model["hidden"], model["embedding"], model["bidirectional"]) == (8, 8, True)
    assert len(meta["task_config"]["init_from"]["runs"]) == 2
    assert main([*base, "--init-from", *lms, "--hidden", "32", "--out", str(tmp_path / "d")]) == 2
    assert "hidden 32 (the LM's is 8)" in capsys.readouterr().err
    assert main([*base, "--init-from", str(tmp_path / "none"), "--out", str(tmp_path / "e")]) == 2
    assert "does not exist" in capsys.readouterr().err
    lm = [
        "train",
        "wordlm",
        str(root / "text.txt"),
        "--no-progress",
        "--steps",
        "1",
        "--seq-len",
        "8",
    ]
    assert main([*lm, "--init-from", lms[1], "--out", str(tmp_path / "f")]) == 0
    assert read_meta(tmp_path / "f" / "last.safetensors")["task_config"]["model"]["reverse"]


def _conll(path, n: int, seed: int):
    rows = []
    for words, _label in _sentences(n, seed):
        rows += [f"{w}\t{'ADJ' if w in GOOD or w in BAD else 'X'}" for w in words.split()]
        rows.append("")
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_two_word_lms_fill_a_taggers_word_embeddings_and_both_directions(data, tmp_path):
    from elman.tasks.tag import task as tag

    root, _ = data
    source = {
        "kind": "conll",
        "train": _conll(tmp_path / "train.tsv", 30, 3),
        "valid": _conll(tmp_path / "valid.tsv", 6, 4),
    }
    config = tag.TagConfig(word_embedding=8, hidden=8, char_filters=0, min_freq=1)
    tc = TrainConfig(steps=1, eval_every=1, progress=False, lr=1e-30)
    tag.train(source, config, tc, tmp_path / "t", init_from=[root / "fw", root / "bw"])
    run = load_run(tmp_path / "t", "last")
    fw, bw = load_run(root / "fw").model, load_run(root / "bw").model
    lm_tokens = load_run(root / "fw").tokenizer.tokens
    got = run.model.state_dict()
    words = run.vocab.words.tokens
    for i, w in enumerate(words[3:], start=3):
        close = torch.testing.assert_close
        close(got["embed.weight"][i], fw.embed.weight[lm_tokens.index(w)], rtol=0, atol=1e-20)
    for name, value in fw.rnn.state_dict().items():
        torch.testing.assert_close(got["rnn." + name], value, rtol=0, atol=1e-20)
        back = bw.rnn.state_dict()[name]
        torch.testing.assert_close(got["rnn." + name + "_reverse"], back, rtol=0, atol=1e-20)
    record = read_meta(tmp_path / "t" / "last.safetensors")["task_config"]["init_from"]
    assert record["coverage"] == 1.0 and len(record["runs"]) == 2
    with pytest.raises(ValueError, match="--char-filters 0 and without --strings"):
        tag.train(
            source,
            tag.TagConfig(word_embedding=8, hidden=8),
            tc,
            tmp_path / "u",
            init_from=[root / "fw", root / "bw"],
        )
    with pytest.raises(ValueError, match="needs a forward and a backward LM"):
        tag.train(source, config, tc, tmp_path / "v", init_from=[root / "fw"])
    with pytest.raises(ValueError, match="character LMs give it contextual string"):
        tag.train(source, config, tc, tmp_path / "w", init_from=[root / "ch"])
    argv = ["train", "tag", "--train", source["train"], "--valid", source["valid"], "--steps", "1"]
    lms = [str(root / "fw"), str(root / "bw")]
    assert main([*argv, "--no-progress", "--init-from", *lms, "--out", str(tmp_path / "x")]) == 0
    model = read_meta(tmp_path / "x" / "last.safetensors")["task_config"]["model"]
    assert (model["char_filters"], model["word_embedding"], model["hidden"]) == (0, 8, 8)
