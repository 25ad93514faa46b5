"""ULMFiT's fine-tuning schedule (Howard & Ruder 2018) in the trainer: slanted triangular rates,
discriminative rates per layer group, gradual unfreezing, their exact resume, the layer-group
contract and the resume of runs written before layer groups."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch import nn

from elman.train import TrainConfig, Trainer, seed_everything
from elman.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from elman.train.schedule import Schedule
from tests.train.fake_task import FakeTask

FAST = dict(progress=False, log_every=1, eval_every=100, lr=1e-2)


class MLPTask:
    """Three linear layers, one layer group each (bottom first); no dropout, no state."""

    name = "mlp"

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(6, 4, 3, generator=g)  # 6 batches of (B=4, 3)
        self.y = self.x.sum(-1, keepdim=True)
        self.model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Linear(4, 1))
        self.snapshots: list[list[torch.Tensor]] = []

    def layer_groups(self):
        m = self.model
        return [list(m[0].parameters()), list(m[2].parameters()), list(m[3].parameters())]

    def at_step(self, step, steps):  # the weights before each step
        self.snapshots.append([p.detach().clone() for p in self.model.parameters()])

    def batches(self, epoch):
        return [(self.x[i], self.y[i]) for i in range(len(self.x))]

    def loss(self, model, batch, carry):
        return ((model(batch[0]) - batch[1]) ** 2).mean(), batch[1].numel(), None

    def evaluate(self, model):
        return {"val_loss": float(((model(self.x[0]) - self.y[0]) ** 2).mean())}

    def describe(self):
        return {"kind": "mlp"}


class GroupedTask(FakeTask):
    """FakeTask (a 2-layer GRU with dropout, carrying state) in three groups: layer 0, layer 1,
    the head; ``shuffled`` lists each group's parameters out of the model's order."""

    def __init__(self, shuffled: bool = False) -> None:
        super().__init__()
        self.shuffled = shuffled

    def layer_groups(self):
        named = list(self.model.named_parameters())
        groups = [[p for n, p in named if key in n] for key in ("_l0", "_l1", "head.")]
        return [g[::-1] for g in groups] if self.shuffled else groups


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _grads(task, batch):
    """The gradients of the loss on ``batch`` of an independent copy of ``task.model``."""
    model = copy.deepcopy(task.model)
    task.loss(model, batch, None)[0].backward()
    return [p.grad for p in model.parameters()]


# ---- slanted triangular learning rates --------------------------------------------------


def test_slanted_rises_to_the_peak_at_cut_and_falls_back_to_one_over_ratio():
    # span 11: T = 10, cut = floor(10 * 0.3) = 3, ratio 4; by hand, in 28ths:
    # rise p = t / 3 -> (1 + 3p) / 4 = 7, 14, 21, 28; fall p = 1 - (t - 3) / 7 -> 28 - 3 (t - 3)
    slanted = Schedule(TrainConfig(steps=11, schedule="slanted", cut_frac=0.3, ratio=4))
    want = [7, 14, 21, 28, 25, 22, 19, 16, 13, 10, 7]
    assert [slanted.multiplier(t) for t in range(11)] == pytest.approx([w / 28 for w in want])
    assert slanted.multiplier(3) == 1.0 and slanted.multiplier(0) == slanted.multiplier(10) == 0.25
    assert slanted.multiplier(50) == 0.25  # past the span (a resume to more steps): the last rate


def test_slanted_is_the_papers_formula_and_never_falls_below_one_over_ratio():
    paper = Schedule(TrainConfig(steps=1001, schedule="slanted"))  # T = 1000, cut = 100
    for t in (0, 50, 100, 101, 550, 1000):
        cut = math.floor(1000 * 0.1)
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / 0.1 - 1))
        assert paper.multiplier(t) == pytest.approx((1 + p * 31) / 32)
    odd = Schedule(TrainConfig(steps=12, schedule="slanted"))  # T = 11: T * cut_frac not whole
    rates = [odd.multiplier(t) for t in range(12)]
    assert rates[1] == 1.0 and rates[-1] == pytest.approx(1 / 32) and min(rates) >= 1 / 32


def test_slanted_by_time_advances_with_the_clock_like_cosine():
    timed = TrainConfig(
        steps=1001, schedule="slanted", time_limit=60.0, anneal_by_time=True, ratio=32
    )
    # halfway by the clock: t = 500, p = 1 - 400 / 900
    assert Schedule(timed).multiplier(10, elapsed=30.0) == pytest.approx((1 + 5 / 9 * 31) / 32)
    assert Schedule(timed).multiplier(10, elapsed=90.0) == pytest.approx(1 / 32)


def test_slanted_refuses_a_warmup_of_its_own():
    with pytest.raises(ValueError, match=r"warmup must be 0 with schedule='slanted'.*warmup=5"):
        TrainConfig(schedule="slanted", warmup=5)


# ---- discriminative rates -----------------------------------------------------------------


def test_each_group_steps_at_its_discriminative_rate(tmp_path):
    seed_everything(0)
    task = MLPTask()
    config = dict(optimizer="sgd", momentum=0.0, weight_decay=0.0, schedule="constant")
    config |= dict(lr=0.1, discriminative=2.6, clip_norm=None, steps=1)
    trainer = Trainer(task, TrainConfig(**(FAST | config)), tmp_path)
    grads = _grads(task, task.batches(0)[0])
    before = [p.detach().clone() for p in task.model.parameters()]
    trainer.fit()
    rates = [0.1 / 2.6**2] * 2 + [0.1 / 2.6] * 2 + [0.1] * 2  # weight and bias of each group
    after = list(task.model.parameters())
    for b, a, g, lr in zip(before, after, grads, rates, strict=True):
        torch.testing.assert_close(b - a, lr * g, rtol=1e-5, atol=1e-8)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx(rates[::2])
    assert _records(tmp_path)[0]["lr"] == 0.1  # the logged rate is the top group's


# ---- gradual unfreezing -------------------------------------------------------------------


def test_unfreezing_holds_lower_groups_bit_identical_until_their_turn(tmp_path):
    seed_everything(0)
    task = MLPTask()
    config = dict(optimizer="adamw", weight_decay=0.5, unfreeze_every=2, steps=6)
    trainer = Trainer(task, TrainConfig(**(FAST | config)), tmp_path)
    trainer.fit(until=4)
    state = trainer.optimizer.state  # frozen so far: no moments, no decay, nothing
    assert [p in state for p in task.model.parameters()] == [False] * 2 + [True] * 4
    trainer.fit()
    snaps = [*task.snapshots, [p.detach() for p in task.model.parameters()]]  # before s = 0..6

    def moved(i, s):  # did parameter i change in step s?
        return not torch.equal(snaps[s][i], snaps[s + 1][i])

    # k = min(3, 1 + s // 2): the head trains from step 0, the middle from 2, the bottom from 4
    for i, first in enumerate([4, 4, 2, 2, 0, 0]):
        assert [moved(i, s) for s in range(6)] == [s >= first for s in range(6)], i
    unfrozen = [(r["step"], r["unfrozen"]) for r in _records(tmp_path) if "unfrozen" in r]
    assert unfrozen == [(1, 1), (3, 2), (5, 3)]  # the 1-based steps that first trained k groups


def test_clipping_sees_only_the_trained_groups(tmp_path):
    seed_everything(0)
    task = MLPTask()
    config = dict(steps=1, unfreeze_every=10, clip_norm=1e-3, optimizer="sgd", momentum=0.0)
    trainer = Trainer(task, TrainConfig(**(FAST | config)), tmp_path)
    head = _grads(task, task.batches(0)[0])[4:]
    trainer.fit()
    logged = _records(tmp_path)[1]["grad_norm"]
    assert logged == pytest.approx(float(torch.cat([g.flatten() for g in head]).norm()))


# ---- exact resume -------------------------------------------------------------------------

ULMFIT = dict(schedule="slanted", cut_frac=0.3, discriminative=2.6, unfreeze_every=4, steps=30)


def _grouped_run(out, until=None, **kw):
    seed_everything(0)
    trainer = Trainer(GroupedTask(), TrainConfig(**(FAST | ULMFIT | kw)), out)
    trainer.fit(until)
    return trainer


def test_a_resumed_ulmfit_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    # paused at step 6: the bottom group is still frozen (and has no optimizer state yet)
    whole = _grouped_run(tmp_path / "whole")
    _grouped_run(tmp_path / "paused", until=6)
    seed_everything(123)  # resuming must not depend on the process's RNG
    resumed = Trainer(GroupedTask(), TrainConfig(**(FAST | ULMFIT)), tmp_path / "paused")
    resumed.restore()
    assert resumed.position.step == 6
    resumed.fit()
    for (name, a), b in zip(
        whole.task.model.state_dict().items(), resumed.task.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    last = "last.safetensors"
    assert (tmp_path / "paused" / last).read_bytes() == (tmp_path / "whole" / last).read_bytes()
    assert _untimed(tmp_path / "paused") == _untimed(tmp_path / "whole")  # unfrozen included


def _untimed(out) -> list[dict]:
    """The metrics log without its wall-clock fields."""
    return [
        {k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")} for r in _records(out)
    ]


def test_a_single_group_checkpoint_resumes_into_layer_groups(tmp_path):
    # a run from before layer groups: one group in the model's order, no parameter names
    seed_everything(0)
    whole = Trainer(FakeTask(), TrainConfig(**(FAST | dict(steps=6))), tmp_path / "whole")
    whole.fit()
    seed_everything(0)
    Trainer(FakeTask(), TrainConfig(**(FAST | dict(steps=6))), tmp_path / "old").fit(until=3)
    path = tmp_path / "old" / "last.safetensors"
    tensors, meta = load_checkpoint(path)
    del meta["optim"]["names"]
    save_checkpoint(path, tensors, meta)
    # the task now has three groups, each listing its parameters out of the model's order
    resumed = Trainer(
        GroupedTask(shuffled=True), TrainConfig(**(FAST | dict(steps=6))), path.parent
    )
    resumed.restore()
    assert len(resumed.optimizer.param_groups) == 3
    resumed.fit()
    for (name, a), b in zip(
        whole.task.model.state_dict().items(), resumed.task.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_an_optimizer_state_for_a_parameter_the_model_lacks_is_a_checkpoint_error(tmp_path):
    seed_everything(0)
    Trainer(FakeTask(), TrainConfig(**(FAST | dict(steps=2))), tmp_path).fit()
    path = tmp_path / "last.safetensors"
    tensors, meta = load_checkpoint(path)
    meta["optim"]["names"][0] = "rnn.gone"
    save_checkpoint(path, tensors, meta)
    resumed = Trainer(GroupedTask(), TrainConfig(**(FAST | dict(steps=4))), tmp_path)
    with pytest.raises(CheckpointError, match=r"parameter 'rnn\.gone', which the optimizer lacks"):
        resumed.restore()


# ---- the layer-group contract and the fields -----------------------------------------------


class BadGroups(MLPTask):
    def __init__(self, groups) -> None:
        super().__init__()
        self.make = groups

    def layer_groups(self):
        return self.make(self.model)


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (
            lambda m: [[m[0].weight], list(m[2].parameters()) + list(m[3].parameters())],
            r"leaves out parameter\(s\) \['0.bias'\]",
        ),
        (
            lambda m: [
                list(m[0].parameters()),
                list(m[2].parameters()),
                [*m[3].parameters(), m[0].bias],
            ],
            "parameter '0.bias' in group 0 and again in group 2",
        ),
        (
            lambda m: [list(m.parameters()), [nn.Parameter(torch.zeros(2))]],
            r"group 1 holds a tensor of shape \(2,\) that is not a parameter of task.model",
        ),
        (lambda m: [list(m.parameters()), []], "group 1 is empty"),
        (lambda m: [], "gave no groups"),
    ],
)
def test_layer_groups_that_miss_or_repeat_a_parameter_are_refused(tmp_path, groups, message):
    with pytest.raises(ValueError, match=r"task 'mlp': layer_groups\(\) .*" + message):
        Trainer(BadGroups(groups), TrainConfig(**FAST), tmp_path)


def test_a_tied_weight_is_listed_once(tmp_path):
    task = MLPTask()
    task.model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 4), nn.Linear(4, 5))
    task.model[2].weight = task.model[0].weight  # tied input and output embeddings
    m = task.model
    task.layer_groups = lambda: [[m[0].weight], list(m[1].parameters()), [m[2].bias]]
    assert len(Trainer(task, TrainConfig(**FAST), tmp_path).optimizer.param_groups) == 3
    task.layer_groups = lambda: [[m[0].weight], list(m[1].parameters()), [*m[2].parameters()]]
    with pytest.raises(ValueError, match=r"'0\.weight' in group 0 and again in group 2"):
        Trainer(task, TrainConfig(**FAST), tmp_path)


@pytest.mark.parametrize("field", [dict(discriminative=2.6), dict(unfreeze_every=3)])
def test_ulmfit_options_need_a_task_with_layer_groups(tmp_path, field):
    name = next(iter(field))
    with pytest.raises(ValueError, match=f"{name}=.* acts on layer groups, but task 'fake' has"):
        Trainer(FakeTask(), TrainConfig(**(FAST | field)), tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cut_frac": 0.0}, r"cut_frac must be a number in \(0, 1\), got 0.0"),
        ({"cut_frac": 1.0}, r"cut_frac must be a number in \(0, 1\), got 1.0"),
        ({"ratio": 0.5}, r"ratio must be a number in \[1, inf\), got 0.5"),
        ({"ratio": math.inf}, r"ratio must be a number in \[1, inf\), got inf"),
        ({"discriminative": 0}, r"discriminative must be a number in \(0, inf\), got 0"),
        ({"discriminative": math.nan}, r"discriminative must be a number in \(0, inf\)"),
        ({"discriminative": "2.6"}, "discriminative must be a number"),
        ({"unfreeze_every": 0}, "unfreeze_every must be an integer >= 1, got 0"),
        ({"unfreeze_every": 2.0}, "unfreeze_every must be an integer >= 1, got 2.0"),
        ({"unfreeze_every": True}, "unfreeze_every must be an integer >= 1, got True"),
    ],
)
def test_bad_ulmfit_fields_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)
