"""The memory benchmarks' generators produce the documented statistics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from elman.data import memory


def test_adding_marks_two_positions_and_sums_their_values():
    task = memory.adding_problem(500, 30, torch.Generator().manual_seed(0))
    values, markers = task.inputs[..., 0], task.inputs[..., 1]
    assert task.inputs.shape == (500, 30, 2)
    assert torch.equal(markers.sum(1), torch.full((500,), 2.0))
    torch.testing.assert_close(task.targets, (values * markers).sum(1))
    assert values.min() >= 0 and values.max() < 1


def test_adding_trivial_predictor_scores_one_sixth():
    task = memory.adding_problem(100_000, 50, torch.Generator().manual_seed(1))
    mse = ((task.targets - 1.0) ** 2).mean().item()
    assert mse == pytest.approx(memory.ADDING_BASELINE_MSE, rel=0.02)
    # both markers fall anywhere: the first half holds one of them about half the time
    first = task.inputs[:, :25, 1].sum(1)
    assert (first == 1).float().mean().item() == pytest.approx(25 * 25 * 2 / (50 * 49), abs=0.01)


def test_copy_memory_layout():
    task = memory.copy_memory(64, delay=20, symbols=8, length=10)
    x, y = task.inputs, task.targets
    assert x.shape == y.shape == (64, 40)
    assert torch.equal(x[:, 29], torch.full((64,), 9))  # the cue ends the delay
    assert torch.equal(y[:, 30:], x[:, :10])
    assert (x[:, :10] >= 1).all() and (x[:, :10] <= 8).all()
    assert (x[:, 10:29] == 0).all() and (x[:, 30:] == 0).all() and (y[:, :30] == 0).all()


def test_copy_baseline_equals_the_cross_entropy_of_blanks_then_a_uniform_guess():
    task = memory.copy_memory(200, delay=50, symbols=8, length=10)
    logits = torch.full((200, 70, 10), -1e4)
    logits[:, :60, 0] = 0.0  # sure of the blanks
    logits[:, 60:, 1:9] = 0.0  # uniform over the eight symbols
    loss = F.cross_entropy(logits.reshape(-1, 10), task.targets.reshape(-1))
    assert loss.item() == pytest.approx(memory.copy_baseline_nats(50), rel=1e-5)
    assert memory.copy_baseline_nats(50) == pytest.approx(10 * math.log(8) / 70)


def test_digit_sequences_pixel_and_row_orders():
    pytest.importorskip("sklearn")
    pixels, rows = memory.digit_sequences("pixel"), memory.digit_sequences("row")
    assert pixels.inputs.shape == (1797, 64, 1) and rows.inputs.shape == (1797, 8, 8)
    assert torch.equal(pixels.inputs.reshape(1797, 8, 8), rows.inputs)
    assert pixels.inputs.min() == 0 and pixels.inputs.max() == 1
    assert set(pixels.targets.tolist()) == set(range(10))
    train, test = memory.split(pixels, 0.2, seed=0)
    assert len(train) + len(test) == 1797 and len(test) == 359


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: memory.adding_problem(0, 10), "n"),
        (lambda: memory.adding_problem(4, 1), "steps"),
        (lambda: memory.copy_memory(4, 0), "delay"),
        (lambda: memory.digit_sequences("column"), "order"),
        (lambda: memory.split(memory.adding_problem(4, 3), 1.5, 0), "test_fraction"),
    ],
)
def test_bad_arguments_name_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()
