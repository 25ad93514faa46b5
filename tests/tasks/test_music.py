"""The music task: NLL per step by its formula, training, generation and MIDI out, the
device rule, and a legacy run answering through its ``Run``."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict

import pytest
import torch
from torch import nn

from elman.tasks import registry
from elman.tasks.music import sampling
from elman.tasks.music import task as music
from elman.tasks.music.run import SPEC, MusicRun
from tests.fixtures.legacy.record import HERE as LEGACY
from tests.helpers import assert_batches_reach_model_device

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
    run = SPEC.load(tmp_path)
    result = run.evaluate()
    assert result["pieces"] >= 1 and result["nll_per_step"] > 0
    assert result == registry.load_run(tmp_path).evaluate(split="test")
    model, encoding, meta = run.model, run.encoding, run.meta
    assert run.frames and run.details()["pitches"] == [encoding.low, encoding.high]
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
    run = SPEC.load(tmp_path, "last")
    model, encoding, meta = run.model, run.encoding, run.meta
    assert run.which == "last" and not run.frames
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


# ---- the device rule (issue: `--device cuda` failed) --------------------------------------
def _frames_run(outputs: int = 5) -> MusicRun:
    """A run of an untrained piano-roll model covering MIDI pitches 60..60+outputs-1."""
    torch.manual_seed(0)
    config = music.MusicConfig(hidden=8)
    encoding = music.Encoding(60, 60 + outputs - 1)
    meta = {"task_config": {"model": asdict(config), "vocab": encoding.to_json()}}
    model = music.MusicModel(config, outputs).eval()
    return MusicRun(".", "best", model, meta, encoding)


def _piano(steps: int, seed: int) -> torch.Tensor:
    """A random roll (steps, 88) sounding only pitches 60..64."""
    roll = torch.zeros(steps, 88)
    roll[:, 39:44] = torch.rand(steps, 5, generator=torch.Generator().manual_seed(seed)) < 0.4
    return roll


def test_evaluation_moves_its_batches_to_the_models_device(monkeypatch):
    run = _frames_run()
    pieces = [_piano(6, 1), _piano(4, 2)]
    assert_batches_reach_model_device(monkeypatch, run.model, lambda: run.evaluate(pieces))


def test_evaluating_given_pieces_equals_the_formulas_sum_and_restores_the_mode():
    run = _frames_run()
    pieces = [_piano(6, 1), _piano(4, 2)]
    run.model.train()
    got = run.evaluate(pieces)
    assert run.model.training  # put back as it was
    batch = music.frames_batch([music.encode(run.encoding, p) for p in pieces])
    with torch.no_grad():
        total, steps = music.nll_sum(run.model.eval(), batch)
    assert got == {
        "nll_per_step": pytest.approx(total.item() / steps),
        "pieces": 2,
        "data": "given pieces",
    }
    with pytest.raises(TypeError, match="beam"):
        run.evaluate(pieces, beam=2)


class OnDevice(nn.Module):
    """A stand-in model answering zero logits (B, T, P) on its input's device (the recurrent
    layer itself reads lengths on the CPU, which a meta tensor cannot give)."""

    def forward(self, x, lengths=None, state=None):
        return torch.zeros(*x.shape[:2], 5, device=x.device), None


@pytest.mark.parametrize("kind", ["chorales", "melody"])
def test_the_loss_builds_every_tensor_on_the_batchs_device(kind):
    """On a GPU the step mask was built on the CPU beside a CUDA batch; on the meta device the
    same mistake raises, so the loss's tensors must all come out on ``meta``."""
    if kind == "melody":
        batch = music.tokens_batch([torch.tensor([2, 3, 4]), torch.tensor([4])])
    else:
        batch = music.frames_batch([torch.ones(3, 5), torch.zeros(1, 5)])
    batch = music.Batch(*(t.to("meta") for t in batch))
    total, steps = music.nll_terms(OnDevice(), batch)
    assert total.device.type == steps.device.type == "meta"
    assert music.real_steps(batch.lengths, 3).device.type == "meta"


# ---- a run written before the task packages moved -------------------------------------
@pytest.fixture(scope="module")
def legacy() -> MusicRun:
    return registry.load_run(LEGACY / "runs" / "music")


def _expected() -> dict:
    return json.loads((LEGACY / "expected.json").read_text())


def test_a_legacy_run_evaluates_through_its_handler_as_before(legacy, capsys):
    from elman.tasks.music.command import HANDLERS

    assert isinstance(legacy, MusicRun) and legacy.task == "music"
    assert HANDLERS["evaluate"].reads == ("split",)
    HANDLERS["evaluate"].run(argparse.Namespace(data=None, split=None), legacy)
    got = json.loads(capsys.readouterr().out)
    want = json.loads(_expected()["music-evaluate"]["stdout"])
    assert got.keys() == want.keys()
    assert got["nll_per_note"] == pytest.approx(want["nll_per_note"], rel=1e-3)
    assert (got["pieces"], got["data"]) == (want["pieces"], want["data"])
    with pytest.raises(ValueError, match="DATA: a music model is scored on its run's held-out"):
        HANDLERS["evaluate"].run(argparse.Namespace(data="x.txt", split=None), legacy)
    with pytest.raises(ValueError, match="split must be 'valid' or 'test'"):
        legacy.evaluate(split="train")


def test_a_legacy_run_generates_midi_through_its_handler(legacy, tmp_path, capsys):
    from elman.tasks.music.command import HANDLERS

    generate = HANDLERS["generate"]
    assert set(generate.reads) == {"length", "midi", "primer_steps", "primer_piece", "primer_midi"}
    midi = tmp_path / "x.mid"
    args = dict(length=None, midi=str(midi), primer_steps=None, primer_piece=None)
    args |= dict(primer_midi=None, temperature=0.8, seed=1)
    generate.run(argparse.Namespace(**args), legacy)
    assert capsys.readouterr().out == f"{midi}: 8 primer + 64 generated steps\n"
    assert midi.stat().st_size > 0
    for bad in (0, -1):
        with pytest.raises(ValueError, match="--length: expected a positive number of steps"):
            generate.run(argparse.Namespace(**args | {"length": bad}), legacy)


def test_a_legacy_run_describes_itself_as_the_server_showed_it(legacy):
    want = next(m for m in _expected()["served"] if m["task"] == "music")
    described = legacy.describe()
    assert {k: want[k] for k in described} == described
    assert legacy.details() == {"grid_quarters": 1.0, "tokens": 87}


def test_a_legacy_run_streams_as_before(legacy):
    stream = legacy.open_stream()
    got = stream.feed([3, 4])
    want = torch.tensor(_expected()["streams"]["music"])
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    again = legacy.restore_stream(stream.to_bytes())
    assert again.steps == 2
    torch.testing.assert_close(again.feed([5]), stream.feed([5]))
    with pytest.raises(ValueError, match="options: a language stream takes none"):
        legacy.open_stream(top_k=3)


def test_a_piano_roll_run_streams_per_pitch_log_sigmoids():
    run = _frames_run()
    frames = (torch.rand(7, 5, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    with torch.no_grad():
        whole = torch.nn.functional.logsigmoid(run.model(frames[None])[0][0])
    stream = run.open_stream()
    got = torch.cat([stream.feed(frames[:3]), stream.feed(frames[3:])])
    torch.testing.assert_close(got, whole)


@pytest.mark.parametrize("mode", [None, "step"])
def test_a_legacy_run_exports_checked_onnx(legacy, tmp_path, mode):
    pytest.importorskip("onnxruntime")
    from elman.graphs.graph import export_checked

    export = legacy.graphs(mode)
    assert export.mode == (mode or "sequence") and export.check is None
    (graph,) = export.graphs
    x = export.real[graph.name][0]
    assert x.shape == ((1, 1) if mode == "step" else (1, len(legacy.primer(0, 32))))
    paths = {graph.name: tmp_path / f"{graph.name}.onnx"}
    diffs = export_checked(export.graphs, paths, export.real, 1e-4)
    assert max(diffs.values()) < 1e-4 and paths[graph.name].is_file()
