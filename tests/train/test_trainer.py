"""Trainer: learning, exact resume, early stopping, NaN guard, logs, schedules."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from elman.train import NonFiniteError, TrainConfig, Trainer, seed_everything
from elman.train.checkpoint import load_checkpoint
from elman.train.metrics import plot_curves
from elman.train.schedule import Schedule
from tests.train.fake_task import FakeTask

FAST = dict(progress=False, log_every=2, eval_every=4, lr=1e-2)


def _run(out, until=None, **kw):
    seed_everything(0)
    task = FakeTask()
    trainer = Trainer(task, TrainConfig(**(FAST | kw)), out)
    return trainer, trainer.fit(until)


def test_training_lowers_the_loss_and_writes_logs_and_checkpoints(tmp_path):
    _, metrics = _run(tmp_path, steps=40)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(evals) == 10 and evals[-1] < 0.9 * evals[0]
    assert metrics["val_loss"] == evals[-1]
    assert {"train_loss", "lr", "grad_norm", "tokens_per_s"} <= set(records[0])
    assert (tmp_path / "last.safetensors").exists() and (tmp_path / "best.safetensors").exists()
    _, meta = load_checkpoint(tmp_path / "best.safetensors", "fake")
    assert meta["metrics"]["val_loss"] == min(evals)


def test_the_loss_curves_are_drawn_where_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib")
    _run(tmp_path, steps=8)
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_without_matplotlib_the_curves_are_left_out_quietly(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    log.write_text(json.dumps({"step": 1, "train_loss": 1.0}) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib... now fails
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert plot_curves(log, tmp_path / "loss.png") is None
    assert not (tmp_path / "loss.png").exists()


@pytest.mark.parametrize("accumulate", [1, 3])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, accumulate):
    # 30 steps cross an epoch boundary (20 batches) and carry GRU state with dropout on
    whole, _ = _run(tmp_path / "whole", steps=30, accumulate=accumulate)
    _run(tmp_path / "paused", until=13, steps=30, accumulate=accumulate)
    seed_everything(123)  # resuming must not depend on the process's RNG
    resumed = Trainer(
        FakeTask(),
        TrainConfig(**(FAST | dict(steps=30, accumulate=accumulate))),
        tmp_path / "paused",
    )
    resumed.restore()
    assert resumed.position.step == 13
    resumed.fit()
    for (name, a), b in zip(
        whole.task.model.state_dict().items(), resumed.task.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.position.step == 30


def test_early_stopping_stops_after_patience(tmp_path):
    trainer, _ = _run(tmp_path, steps=400, lr=1e-9, patience=2, eval_every=2)
    assert trainer.position.step < 400
    assert trainer.position.evals_since_best == 2


def test_nan_guard_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    seed_everything(0)
    task = FakeTask(nan_at=11)
    trainer = Trainer(task, TrainConfig(**(FAST | dict(steps=20))), tmp_path)
    with pytest.raises(
        NonFiniteError,
        match=r"step 11: loss is nan; training stopped\. The "
        r"last good checkpoint .*last.safetensors",
    ):
        trainer.fit()
    _, meta = load_checkpoint(tmp_path / "last.safetensors", "fake")
    assert meta["position"]["step"] == 8


def test_gradient_clipping_bounds_the_update(tmp_path):
    seed_everything(0)
    task = FakeTask()
    trainer = Trainer(
        task,
        TrainConfig(
            **(FAST | dict(steps=1, clip_norm=1e-3, lr=1.0, optimizer="sgd", momentum=0.0))
        ),
        tmp_path,
    )
    before = [p.detach().clone() for p in task.model.parameters()]
    trainer.fit()
    moved = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(task.model.parameters(), before, strict=True)]
    )
    assert moved.norm() <= 1e-3 * 1.0001


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_resumes_exactly(tmp_path, optimizer):
    # its state (moments, momentum buffers) must come back: the weights equal an unpaused run's
    whole, metrics = _run(tmp_path / "whole", steps=6, optimizer=optimizer)
    assert math.isfinite(metrics["val_loss"])
    _run(tmp_path / "paused", until=3, steps=6, optimizer=optimizer)
    seed_everything(123)
    config = TrainConfig(**(FAST | dict(steps=6, optimizer=optimizer)))
    resumed = Trainer(FakeTask(), config, tmp_path / "paused")
    resumed.restore()
    assert resumed.position.step == 3
    resumed.fit()
    for (name, a), b in zip(
        whole.task.model.state_dict().items(), resumed.task.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_schedules():
    cos = Schedule(TrainConfig(steps=11, warmup=2, min_lr=0.1))
    assert [round(cos.multiplier(s), 4) for s in (0, 1, 2, 10)] == [0.5, 1.0, 1.0, 0.1]
    step = Schedule(TrainConfig(schedule="step", step_every=3, gamma=0.5))
    assert [step.multiplier(s) for s in (0, 2, 3, 7)] == [1, 1, 0.5, 0.25]
    plateau = Schedule(TrainConfig(schedule="plateau", plateau_patience=2, gamma=0.1))
    for loss in (1.0, 0.9, 0.95, 0.95):
        plateau.observe(loss)
    assert plateau.multiplier(100) == pytest.approx(0.1)


def test_anneal_by_time_ends_the_cosine_with_the_time_limit():
    timed = Schedule(TrainConfig(steps=1000, min_lr=0.1, time_limit=60.0, anneal_by_time=True))
    assert timed.multiplier(10, elapsed=30.0) == pytest.approx(0.55)  # halfway by the clock
    assert timed.multiplier(10, elapsed=60.0) == pytest.approx(0.1)
    assert timed.multiplier(999, elapsed=1.0) == pytest.approx(0.1)  # steps can still end it
    untimed = Schedule(TrainConfig(steps=1000, min_lr=0.1, time_limit=60.0))
    assert untimed.multiplier(10, elapsed=60.0) > 0.99
    with pytest.raises(ValueError, match="anneal_by_time needs a time_limit"):
        TrainConfig(anneal_by_time=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0}, r"lr must be a number in \(0, inf\]"),
        ({"optimizer": "adagrad"}, "optimizer must be one of adam, adamw, sgd, rmsprop"),
        ({"steps": 0}, "steps must be an integer >= 1, got 0"),
        ({"clip_norm": -1.0}, "clip_norm must be a number"),
        ({"schedule": "linear"}, "schedule must be one of"),
    ],
)
def test_bad_train_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_an_exact_resume_writes_the_same_checkpoint_bytes(tmp_path):
    _run(tmp_path / "whole", steps=12)
    _run(tmp_path / "paused", until=5, steps=12)
    resumed = Trainer(FakeTask(), TrainConfig(**(FAST | dict(steps=12))), tmp_path / "paused")
    resumed.restore()
    resumed.fit()
    whole = (tmp_path / "whole" / "last.safetensors").read_bytes()
    assert (tmp_path / "paused" / "last.safetensors").read_bytes() == whole  # no wall time


def test_a_resume_after_a_kill_cleans_up_and_keeps_one_log_line_per_step(tmp_path):
    _run(tmp_path, until=8, steps=16)
    log = tmp_path / "metrics.jsonl"
    with open(log, "a") as f:  # a kill -9 after step 10's line, before its checkpoint
        f.write(json.dumps({"step": 10, "train_loss": 1.0}) + "\n" + '{"step": 12, "tr')
    debris = tmp_path / ".last.safetensors.k1ll3d.tmp.safetensors"
    debris.write_bytes(b"half a checkpoint")
    resumed = Trainer(FakeTask(), TrainConfig(**(FAST | dict(steps=16))), tmp_path)
    resumed.restore()
    assert resumed.position.seconds > 0  # the time so far, read back from the log
    resumed.fit()
    assert not debris.exists()
    steps = [r["step"] for r in (json.loads(x) for x in log.read_text().splitlines())]
    train_steps = [s for s, r in zip(steps, log.read_text().splitlines(), strict=True) if "lr" in r]
    assert train_steps == sorted(set(train_steps)) == list(range(2, 17, 2))


def test_a_new_total_keeps_the_schedule_span():
    keep = Schedule(TrainConfig(steps=40, schedule_steps=20, min_lr=0.1))
    fresh = Schedule(TrainConfig(steps=20, min_lr=0.1))
    assert [keep.multiplier(s) for s in range(20)] == [fresh.multiplier(s) for s in range(20)]
    assert keep.multiplier(30) == pytest.approx(0.1)  # past the span: the final rate


def test_the_throughput_key_names_the_tasks_unit(tmp_path):
    task = FakeTask()
    task.unit = "examples"
    seed_everything(0)
    Trainer(task, TrainConfig(**(FAST | dict(steps=4))), tmp_path).fit()
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert "examples_per_s" in first and "tokens_per_s" not in first


class _Scripted(FakeTask):
    """Validation that reports a scripted accuracy beside a loss that only grows."""

    def __init__(self, accuracies):
        super().__init__()
        self.accuracies = iter(accuracies)
        self.evals = 0

    def evaluate(self, model):
        self.evals += 1
        return {"val_loss": float(self.evals), "val_accuracy": next(self.accuracies)}


@pytest.mark.parametrize(
    ("monitor", "best_step"), [("val_loss", 4), ("val_accuracy", 8), ("-val_accuracy", 4)]
)
def test_the_monitored_metric_picks_the_best_checkpoint(tmp_path, monitor, best_step):
    seed_everything(0)
    config = TrainConfig(**(FAST | {"steps": 16, "monitor": monitor, "patience": 3}))
    trainer = Trainer(_Scripted([0.5, 0.9, 0.7, 0.8]), config, tmp_path)
    trainer.fit()
    assert trainer.position.best_step == best_step
    _, meta = load_checkpoint(tmp_path / "best.safetensors")
    assert meta["step"] == best_step


def test_early_stopping_follows_the_monitored_metric(tmp_path):
    seed_everything(0)
    config = TrainConfig(**(FAST | {"steps": 40, "monitor": "val_accuracy", "patience": 2}))
    trainer = Trainer(_Scripted([0.5, 0.9, 0.7, 0.8, 0.95, 0.1]), config, tmp_path)
    trainer.fit()
    assert trainer.position.step == 16  # no gain at the 3rd and 4th evaluations


@pytest.mark.parametrize(
    ("monitor", "message"),
    [
        ("val_score", r"cannot tell whether it is better higher or lower; write '\+val_score'"),
        ("", "monitor must be a metric name"),
        ("+-val", "monitor must be a metric name"),
    ],
)
def test_a_monitor_without_a_direction_is_refused(monitor, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(monitor=monitor)


def test_a_monitored_metric_the_task_does_not_report_is_named(tmp_path):
    config = TrainConfig(**(FAST | {"steps": 8, "monitor": "val_f1"}))
    with pytest.raises(ValueError, match="reports val_loss; choose one of them"):
        Trainer(FakeTask(), config, tmp_path).fit()


def test_watchers_see_every_evaluation_and_can_stop_the_run(tmp_path):
    from elman.train.watch import watching

    seen = []
    with watching(lambda step, metrics: seen.append((step, sorted(metrics)))):
        _run(tmp_path / "a", steps=10)
    assert seen == [(4, ["val_loss"]), (8, ["val_loss"]), (10, ["val_loss"])]

    class Stop(Exception):
        pass

    def stop(step, metrics):
        if step == 8:
            raise Stop

    with pytest.raises(Stop), watching(stop):
        _run(tmp_path / "b", steps=40)
    _, meta = load_checkpoint(tmp_path / "b" / "last.safetensors")
    assert meta["position"]["step"] == 8  # the step's checkpoint is written before the watcher
    _run(tmp_path / "c", steps=10)  # outside the block nobody watches
