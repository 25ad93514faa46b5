"""The AWD-LSTM regularisers as task options: the AR/TAR penalty, what the language models
and classifier do with them, backward (reverse) language models, concat pooling, the "awd"
preset and ULMFiT's layer groups."""

from __future__ import annotations

import pytest
import torch

from elman.cli import main
from elman.data.tokenize import Tokenizer
from elman.nn import LockedDropout
from elman.nn.pooling import Pooling
from elman.tasks.awd import AWD_MODEL, AWD_TRAIN, Regularizers, penalty
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.classify.stream import ClassifyStream
from elman.tasks.lm import charlm, wordlm
from elman.tasks.lm.run import CHARLM, WORDLM, CharRun
from elman.tasks.registry import spec
from elman.train import TrainConfig
from elman.train.checkpoint import read_meta


def test_penalty_is_ar_on_dropped_and_tar_on_raw_outputs_over_real_steps():
    dropped = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])  # (1, 3, 2)
    raw = torch.tensor([[[1.0, 1.0], [2.0, 3.0], [7.0, 7.0]]])
    full = penalty(dropped, raw, 2.0, 1.0)
    ar = 2.0 * (1 + 4 + 9 + 16 + 81 + 81) / 6
    tar = 1.0 * ((1 + 4) + (25 + 16)) / 4
    assert full.item() == pytest.approx(ar + tar)
    mask = torch.tensor([[True, True, False]])  # the third step is padding
    masked = penalty(dropped, raw, 2.0, 1.0, mask)
    assert masked.item() == pytest.approx(2.0 * 30 / 4 + 1.0 * 5 / 2)
    assert penalty(dropped, raw, 0.0, 0.0).item() == 0.0


def test_regularizer_fields_are_checked_with_their_names():
    with pytest.raises(ValueError, match="weight_dropout must be in"):
        Regularizers(weight_dropout=1.0)
    with pytest.raises(ValueError, match="ar must be a number >= 0"):
        Regularizers(ar=-1)
    with pytest.raises(TypeError, match="locked_dropout must be True or False"):
        charlm.CharLMConfig(locked_dropout="yes")


def _text(tmp_path, docs=("the cat sat on the mat. " * 40, "a dog ran in the fog. " * 40)):
    paths = []
    for i, doc in enumerate(docs):
        p = tmp_path / f"doc{i}.txt"
        p.write_text(doc)
        paths.append(p)
    return paths


TINY = dict(embedding=8, hidden=8, layers=2, batch_size=2, seq_len=16)


def test_a_language_model_adds_ar_tar_to_what_it_minimises_but_reports_the_nats(tmp_path):
    text, starts, _ = charlm.text_source(_text(tmp_path))
    config = charlm.CharLMConfig(**TINY, ar=2.0, tar=1.0, weight_dropout=0.3, locked_dropout=True)
    task = charlm.CharLMTask(text, config, 0, doc_starts=starts)
    assert isinstance(task.model.drop, LockedDropout) and task.model.rnn.config.locked_dropout
    batch = next(iter(task.batches(0)))
    task.model.train()
    objective, n, _, nats = task.loss(task.model, batch, None)
    assert n == batch.y.numel() and objective.item() > nats.item() > 0
    task.model.eval()
    with torch.no_grad():
        _, _, extra = task.model(batch.x, None, batch.starts, batch.y)
    assert extra.item() == 0.0  # no penalty, and no dropout of any kind, in evaluation


def test_a_backward_char_model_reads_each_part_reversed_with_its_document_starts(tmp_path):
    text, starts, _ = charlm.text_source(_text(tmp_path))
    forward = charlm.CharLMTask(text, charlm.CharLMConfig(**TINY), 0, doc_starts=starts)
    backward = charlm.CharLMTask(
        text, charlm.CharLMConfig(**TINY, reverse=True), 0, doc_starts=starts
    )
    assert torch.equal(backward.train_ids, forward.train_ids.flip(0))
    assert torch.equal(backward.valid_ids, forward.valid_ids.flip(0))
    n = forward.train_ids.numel()
    assert backward.train_starts.tolist() == [
        n - s for s in reversed(forward.train_starts.tolist())
    ]


def test_a_backward_word_model_reads_each_document_from_its_end():
    tok = Tokenizer.fit(["a b c", "d e"], "whitespace")
    ids, starts = wordlm.encode_documents(tok, [["a b", "c"], ["d e"]])
    back, back_starts = wordlm.encode_documents(tok, [["a b", "c"], ["d e"]], reverse=True)
    assert back.tolist() == [*ids[:5].flip(0).tolist(), *ids[5:].flip(0).tolist()]
    assert back_starts.tolist() == starts.tolist() == [5]


def test_a_backward_run_scores_text_but_refuses_to_continue_it(tmp_path, capsys):
    paths = _text(tmp_path)
    out = tmp_path / "bw"
    tiny = ["--embedding", "8", "--hidden", "8", "--layers", "1", "--batch-size", "2"]
    argv = ["train", "charlm", *map(str, paths), "--reverse", "--steps", "2", "--no-progress"]
    assert main([*argv, *tiny, "--out", str(out)]) == 0  # no sample: it cannot continue text
    run = CharRun.open(out)
    text = paths[0].read_text()
    scored = run.evaluate(paths[0])
    by_hand = charlm.evaluate_ids(run.model, run.vocab.encode(text[::-1]))
    assert scored["nats_per_char"] == pytest.approx(by_hand)
    for call in (lambda: run.generate("the", 5), run.open_stream):
        with pytest.raises(ValueError, match="this is a backward model"):
            call()
    assert main(["generate", str(out), "--prompt", "the"]) == 2
    assert "backward model" in capsys.readouterr().err


def test_concat_pooling_is_last_max_mean_and_streams_like_predict():
    torch.manual_seed(0)
    out = torch.randn(2, 5, 4)
    lengths = torch.tensor([5, 3])
    parts = [Pooling(k, 4)(out, lengths) for k in ("last", "max", "mean")]
    pool = Pooling("concat", 4)
    assert pool.out_size == 12 and torch.equal(pool(out, lengths), torch.cat(parts, -1))
    model = SequenceClassifier(3, "gru", 6, bidirectional=False, pooling="concat", vocab_size=9)
    model.eval()
    ids = torch.tensor([[4, 5, 6, 7, 8]])
    whole = model(ids, torch.tensor([5])).softmax(-1)
    stream = ClassifyStream(model)
    stream.feed(ids[0, :2])
    last = stream.feed(ids[0, 2:])  # in two chunks: the running statistics carry over
    torch.testing.assert_close(last[-1], whole[0])


def test_the_classifier_penalty_covers_real_steps_only_and_locked_mode_drops_outputs():
    torch.manual_seed(0)
    r = Regularizers(ar=1.0, locked_dropout=True)
    model = SequenceClassifier(2, "lstm", 4, vocab_size=7, dropout=0.5, regularizers=r)
    assert isinstance(model.out_drop, LockedDropout) and isinstance(model.drop, torch.nn.Identity)
    x = torch.tensor([[3, 4, 5], [3, 4, 0]])
    model.train()
    logits, extra = model(x, torch.tensor([3, 2]), True)
    assert logits.shape == (2, 2) and extra.item() > 0
    model.eval()
    assert model(x, torch.tensor([3, 2]), True)[1].item() == 0.0


def test_the_awd_preset_sets_its_values_and_options_beside_it_win(tmp_path):
    config, train = CHARLM.preset("awd", ar=0.5)
    assert config.weight_dropout == AWD_MODEL["weight_dropout"] and config.ar == 0.5
    assert train.optimizer == AWD_TRAIN["optimizer"] and train.lr == AWD_TRAIN["lr"]
    assert spec("classify").preset("awd")[1] == spec("classify").train_config()  # model only
    with pytest.raises(ValueError, match="no preset 'nope'"):
        WORDLM.preset("nope")
    paths = _text(tmp_path)
    argv = ["train", "charlm", *map(str, paths), "--preset", "awd", "--ar", "0.5", "--steps", "2"]
    tiny = ["--embedding", "8", "--hidden", "8", "--batch-size", "2", "--no-progress"]
    assert main([*argv, *tiny, "--sample-length", "0", "--out", str(tmp_path / "r")]) == 0
    meta = read_meta(tmp_path / "r" / "last.safetensors")
    model = meta["task_config"]["model"]
    assert model["ar"] == 0.5 and model["tar"] == 1.0 and model["locked_dropout"] is True
    assert meta["train"]["optimizer"] == "nt-asgd" and meta["train"]["clip_norm"] == 0.25


def test_layer_groups_run_bottom_to_top_and_hold_a_tied_weight_once(tmp_path):
    corpus = wordlm.text_corpus(_text(tmp_path))
    config = wordlm.WordLMConfig(**TINY, min_freq=1, tie=True)
    task = wordlm.WordLMTask(corpus, config)
    groups = task.layer_groups()
    assert len(groups) == 4  # embedding, two recurrent layers, the output layer
    assert groups[0] == [task.model.embed.weight]
    flat = [id(p) for g in groups for p in g]
    assert len(flat) == len(set(flat)) == len(list(task.model.parameters()))
    train = TrainConfig(steps=2, eval_every=2, progress=False, discriminative=2.6)
    wordlm.train(corpus, config, train, tmp_path / "run")  # the trainer accepts the groups


def test_every_new_option_reaches_the_run_from_the_command_line(tmp_path):
    paths = [str(p) for p in _text(tmp_path)]
    regularise = ["--weight-dropout", "0.2", "--locked-dropout", "--token-dropout", "0.1"]
    regularise += ["--ar", "1.5", "--tar", "0.5"]
    schedule = ["--schedule", "slanted", "--cut-frac", "0.2", "--ratio", "8", "--warmup", "0"]
    schedule += ["--discriminative", "2.6", "--unfreeze-every", "1"]
    tiny = ["--embedding", "8", "--hidden", "8", "--batch-size", "2", "--steps", "3"]
    argv = ["train", "wordlm", *paths, *regularise, *schedule, *tiny, "--no-progress"]
    assert main([*argv, "--min-freq", "1", "--seq-len", "8", "--out", str(tmp_path / "w")]) == 0
    meta = read_meta(tmp_path / "w" / "last.safetensors")
    model, train = meta["task_config"]["model"], meta["train"]
    assert (model["weight_dropout"], model["locked_dropout"], model["token_dropout"]) == (
        0.2,
        True,
        0.1,
    )
    assert (model["ar"], model["tar"]) == (1.5, 0.5)
    assert (train["schedule"], train["cut_frac"], train["ratio"]) == ("slanted", 0.2, 8.0)
    assert (train["discriminative"], train["unfreeze_every"]) == (2.6, 1)
    table = tmp_path / "t.csv"
    table.write_text("text,label\n" + "".join(f"a b {i % 3},{i % 2}\n" for i in range(20)))
    argv = ["train", "classify", "--train", str(table), *regularise, *schedule, "--no-progress"]
    more = ["--pooling", "concat", "--steps", "3", "--hidden", "4", "--embedding", "4"]
    assert main([*argv, *more, "--out", str(tmp_path / "c")]) == 0
    model = read_meta(tmp_path / "c" / "last.safetensors")["task_config"]["model"]
    assert model["pooling"] == "concat" and model["weight_dropout"] == 0.2
