"""The music task: NLL per step by its formula, training, generation and MIDI out."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from elman.tasks.music import sampling
from elman.tasks.music import task as music

pytest.importorskip("music21")
pytest.importorskip("mido")


class Fixed(nn.Module):
    """A stand-in model whose logits are given."""

    def __init__(self, logits):
        super().__init__()
        self.logits, self.embed = logits, None

    def forward(self, x, lengths=None, state=None):
        return self.logits, None


def test_nll_per_step_of_a_hand_built_example_equals_the_formula():
    roll = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])  # T=3, P=2
    batch = music.frames_batch([roll, roll[:2]])
    assert batch.inputs[0].tolist() == [[0, 0], [1, 0], [0, 0]]
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]]).expand(2, 3, 2)
    total, steps = music.nll_sum(Fixed(logits), batch)
    s = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    first = -(math.log(s(0)) + math.log(1 - s(1)))  # pitch 0 on, pitch 1 off
    second = -(math.log(1 - s(2)) + math.log(1 - s(-1)))
    third = -(math.log(s(0.5)) * 2)
    assert steps == 5
    assert total.item() == pytest.approx(2 * (first + second) + third, rel=1e-6)


def test_chorales_train_evaluate_generate(tmp_path):
    source = {"kind": "chorales", "limit": 6, "seed": 0, "cache": None}
    config = music.MusicConfig(hidden=8, batch_size=2, augment=1)
    from elman.train import TrainConfig

    metrics = music.train(source, config, TrainConfig(steps=3, eval_every=3), tmp_path)
    assert metrics["val_loss"] > 0
    split = json.loads((tmp_path / "split.json").read_text())
    assert sorted(len(v) for v in split.values()) == [1, 1, 4]  # 6 chorales, 62/19/19%
    assert len({n for names in split.values() for n in names}) == 6
    assert split["train"][0].endswith(".mxl")
    result = music.evaluate_split(tmp_path)
    assert result["pieces"] >= 1 and result["nll_per_step"] > 0
    model, encoding, meta = music.load(tmp_path)
    assert 21 <= encoding.low < encoding.high <= 108
    primer = sampling.primer_from(meta, 0, 4)
    piece = sampling.generate(model, encoding, primer, 6, seed=3)
    assert piece.shape == (10, encoding.outputs) and torch.equal(piece[:4], primer)
    assert torch.equal(piece, sampling.generate(model, encoding, primer, 6, seed=3))
    path = sampling.write_midi(piece, encoding, 1.0, tmp_path / "g.mid")
    from elman.data.midi import read_midi_roll

    back = read_midi_roll(path, 1.0)
    a = encoding.low - 21
    assert torch.equal(back[:, a : a + encoding.outputs], piece)
    with pytest.raises(ValueError, match="primer piece"):
        sampling.primer_from(meta, 99, 4)
    with pytest.raises(ValueError, match="temperature"):
        sampling.generate(model, encoding, primer, 2, temperature=-1)
    greedy = sampling.generate(model, encoding, primer, 3, temperature=0, seed=1)
    assert torch.equal(greedy, sampling.generate(model, encoding, primer, 3, temperature=0))


def test_melody_tokens_train_and_generate(tmp_path):
    source = {"kind": "melody", "match": "test1", "seed": 0}
    config = music.MusicConfig(kind="melody", hidden=8, embedding=8, batch_size=4)
    from elman.train import TrainConfig

    music.train(source, config, TrainConfig(steps=2, eval_every=2), tmp_path)
    split = json.loads((tmp_path / "split.json").read_text())
    assert sum(map(len, split.values())) == 20 and split["test"][0].startswith("test1.abc#")
    model, encoding, meta = music.load(tmp_path)
    assert encoding.tokens[:2] == ("<s>", "<unk>") and "/" in encoding.tokens[2]
    piece = sampling.generate(model, encoding, sampling.primer_from(meta, 0, 3), 10, seed=1)
    assert 3 <= len(piece) <= 13 and int(piece.min()) > 1
    assert sampling.write_midi(piece, encoding, 1.0, tmp_path / "m.mid").stat().st_size > 0


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="kind"):
        music.MusicConfig(kind="jazz")
    with pytest.raises(ValueError, match="augment"):
        music.MusicConfig(augment=20)
    with pytest.raises(ValueError, match="step"):
        music.MusicConfig(step=0)
