"""NT-ASGD: the non-monotone trigger, the averaged weights in evaluations and checkpoints,
exact resume, validation and the CLI option."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from elman.tasks.options import add_run_options, train_config
from elman.train import TrainConfig, Trainer, seed_everything
from elman.train.averaging import NTAverage
from elman.train.checkpoint import load_checkpoint, read_meta, save_checkpoint
from tests.train.fake_task import FakeTask

NT = dict(progress=False, log_every=2, eval_every=2, lr=1e-2, optimizer="nt-asgd", nonmono=2)
# with nonmono=2 the rule fires at the 6th evaluation (step 12): 3.1 > min(5, 4, 3) = 3.
# A plain "worse than the best so far" rule would fire at the 4th (3.5 > 3) already.
SCRIPT = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4]


class ScriptedTask(FakeTask):
    """FakeTask whose validation losses follow ``SCRIPT``; it records the weights it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, torch.Tensor]] = []

    def evaluate(self, model):
        self.seen.append({k: v.detach().clone() for k, v in model.named_parameters()})
        return {"val_loss": SCRIPT[len(self.seen) - 1]}


def _trainer(out, **kw) -> Trainer:
    seed_everything(0)
    return Trainer(ScriptedTask(), TrainConfig(**(NT | kw)), out)


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_averaging_starts_exactly_where_the_non_monotone_rule_says(tmp_path):
    trainer = _trainer(tmp_path, steps=16)
    trainer.fit()
    assert trainer.averaging.started == 12
    assert trainer.averaging.history == SCRIPT[:8]
    assert trainer.averaging.count == 4  # steps 13..16
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals if "asgd_started" in r] == [12]
    assert [r["step"] for r in evals if r.get("averaged")] == [14, 16]
    assert read_meta(tmp_path / "last.safetensors")["averaging"]["started"] == 12


def test_the_trigger_rule():
    avg = NTAverage(nonmono=1)  # 2.5 is worse than 2.0, but 2.0 is within the last 1
    fired = [avg.observe(v, s) for s, v in enumerate([3.0, 2.0, 2.5, 2.6, 1.0])]
    assert fired == [False, False, False, True, False] and avg.started == 3
    never = NTAverage(nonmono=3)
    assert not any(never.observe(v, s) for s, v in enumerate([4.0, 3.0, 2.0, 1.0, 0.5]))


def test_evaluations_after_the_switch_see_the_mean_of_the_iterates(tmp_path):
    trainer = _trainer(tmp_path, steps=18)
    iterates = []
    for step in range(1, 19):  # one step at a time, to record each iterate
        trainer.fit(until=step)
        if step > 12:
            iterates.append(_params(trainer.task.model))
    seen = trainer.task.seen  # evaluations at steps 2, 4, ..., 18
    for k, step in enumerate(range(14, 19, 2)):
        since = iterates[: step - 12]
        for name, w in seen[6 + k].items():
            mean = torch.stack([it[name] for it in since]).mean(0)
            torch.testing.assert_close(w, mean, rtol=0, atol=1e-6)
    # best.safetensors holds the averaged model of the last (best) evaluation
    tensors, meta = load_checkpoint(tmp_path / "best.safetensors", "fake")
    assert meta["step"] == 18 and meta["averaged"] and meta["asgd_started"] == 12
    for name, w in seen[-1].items():
        assert torch.equal(tensors[f"model.{name}"], w), name


def test_the_raw_iterates_are_plain_sgd(tmp_path):
    nt = _trainer(tmp_path / "nt", steps=16, weight_decay=1e-3)
    nt.fit()
    seed_everything(0)
    sgd = Trainer(
        ScriptedTask(),
        TrainConfig(**(NT | dict(steps=16, optimizer="sgd", momentum=0.0, weight_decay=1e-3))),
        tmp_path / "sgd",
    )
    sgd.fit()
    for (name, a), b in zip(
        _params(nt.task.model).items(), _params(sgd.task.model).values(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("pause", [7, 12, 15])  # before, at and after the switch
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, pause):
    whole = _trainer(tmp_path / "whole", steps=20)
    whole.fit()
    _trainer(tmp_path / "paused", steps=20).fit(until=pause)
    seed_everything(123)
    resumed = Trainer(ScriptedTask(), TrainConfig(**(NT | dict(steps=20))), tmp_path / "paused")
    resumed.task.seen = [{}] * (pause // 2)  # the script goes on where the evaluations were
    resumed.restore()
    resumed.fit()
    a, b = whole.averaging, resumed.averaging
    assert (a.started, a.count, a.history) == (12, 8, SCRIPT[:10])
    assert (b.started, b.count, b.history) == (12, 8, SCRIPT[:10])
    for name, w in _params(whole.task.model).items():
        assert torch.equal(w, _params(resumed.task.model)[name]), name
        assert torch.equal(a.mean[name], b.mean[name]), name
    last = (tmp_path / "whole" / "last.safetensors").read_bytes()
    assert (tmp_path / "paused" / "last.safetensors").read_bytes() == last


def test_a_checkpoint_without_averaging_state_still_resumes(tmp_path):
    # today's checkpoints: no nonmono in the config, no averaging state (rewritten as nt-asgd
    # to show that a run then simply starts its history at the resume)
    _trainer(tmp_path, steps=8, optimizer="sgd").fit(until=4)
    tensors, meta = load_checkpoint(tmp_path / "last.safetensors", "fake")
    del meta["train"]["nonmono"], meta["format"]
    save_checkpoint(tmp_path / "last.safetensors", tensors, meta)
    for optimizer in ("sgd", "nt-asgd"):
        config = TrainConfig.from_json(meta["train"] | {"optimizer": optimizer})
        assert config.nonmono == 5
        trainer = Trainer(ScriptedTask(), config, tmp_path)
        trainer.restore()
        assert trainer.position.step == 4
        if trainer.averaging is not None:
            assert trainer.averaging.history == [] and not trainer.averaging.active
    trainer.fit()
    assert trainer.position.step == 8


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_nonmono_is_validated(bad):
    with pytest.raises(ValueError, match=f"nonmono must be an integer >= 1, got {bad!r}"):
        TrainConfig(nonmono=bad)


def test_the_cli_options_parse():
    parser = argparse.ArgumentParser()
    add_run_options(parser, {})
    args = parser.parse_args(["--out", "x", "--optimizer", "nt-asgd", "--nonmono", "3"])
    config = train_config(args)
    assert (config.optimizer, config.nonmono) == ("nt-asgd", 3)
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "x", "--nonmono", "many"])


def test_averaging_state_that_does_not_fit_the_model_is_refused():
    model = FakeTask().model
    avg = NTAverage(nonmono=2)
    with pytest.raises(ValueError, match=r"averaged weights \['nope'\] are not the model's"):
        avg.load_state({"nope": torch.zeros(1)}, {"history": [], "started": 3, "count": 1}, model)
    with pytest.raises(ValueError, match="averaging state is inconsistent: count 2, 0 averaged"):
        avg.load_state({}, {"history": [1.0], "started": 3, "count": 2}, model)
