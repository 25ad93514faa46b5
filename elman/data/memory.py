"""The classic tests of recurrent memory, as tensors: the adding problem, copy memory, and
the 8x8 digits read as sequences.

- Adding (Hochreiter & Schmidhuber 1997; the variant of Le et al. 2015 and the TCN paper,
  Bai et al. 2018): each step carries a value u_t ~ U(0, 1) and a marker m_t; exactly two
  markers are 1, at two distinct positions drawn uniformly. The target is the sum of the two
  marked values. Always answering 1 (the target's mean) scores MSE = Var(u + u') = 1/6.
- Copy memory (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016; TCN): ``length`` symbols
  from 1..``symbols``, ``delay`` blanks (0) with the last one replaced by the cue
  ``symbols + 1``, then ``length`` blanks; the target is blank for the first
  ``delay + length`` steps, then the symbols. Answering blanks, then a uniform guess, costs
  ``length * ln(symbols) / (delay + 2 * length)`` nats per step.
- Sequential digits: scikit-learn's bundled 8x8 digit images (1,797, values 0..16, scaled
  to [0, 1]), read pixel by pixel (64 steps of 1 value) or row by row (8 steps of 8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

ADDING_BASELINE_MSE = 1.0 / 6.0
BLANK = 0


@dataclass(frozen=True)
class MemoryTask:
    """Inputs and targets of a memory benchmark.

    inputs: (N, T, F) float32 for adding and digits, (N, T) int64 symbols for copy memory.
    targets: (N,) float32 sums (adding), (N, T) int64 symbols (copy), (N,) int64 classes.
    """

    inputs: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]


def _check_positive(name: str, value: int, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name}: expected an integer >= {least}, got {value!r}")


def adding_problem(n: int, steps: int, generator: torch.Generator | None = None) -> MemoryTask:
    """``n`` adding sequences of ``steps`` steps: inputs (n, steps, 2) = (u_t, m_t)."""
    _check_positive("n", n)
    _check_positive("steps", steps, 2)
    values = torch.rand(n, steps, generator=generator)
    # two distinct positions per row: the first two of a random permutation's ranks
    order = torch.rand(n, steps, generator=generator).argsort(dim=1)[:, :2]
    markers = torch.zeros(n, steps).scatter_(1, order, 1.0)
    targets = values.gather(1, order).sum(1)
    return MemoryTask(torch.stack([values, markers], dim=-1), targets)


def copy_memory(
    n: int,
    delay: int,
    symbols: int = 8,
    length: int = 10,
    generator: torch.Generator | None = None,
) -> MemoryTask:
    """``n`` copy-memory sequences of ``delay + 2 * length`` steps over ``symbols + 2`` tokens
    (0 blank, 1..symbols data, symbols + 1 the cue to recall)."""
    _check_positive("n", n)
    _check_positive("delay", delay)
    _check_positive("symbols", symbols)
    _check_positive("length", length)
    data = torch.randint(1, symbols + 1, (n, length), generator=generator)
    total = delay + 2 * length
    inputs = torch.full((n, total), BLANK, dtype=torch.int64)
    inputs[:, :length] = data
    inputs[:, length + delay - 1] = symbols + 1
    targets = torch.full((n, total), BLANK, dtype=torch.int64)
    targets[:, -length:] = data
    return MemoryTask(inputs, targets)


def copy_baseline_nats(delay: int, symbols: int = 8, length: int = 10) -> float:
    """Cross-entropy per step of blanks, then a uniform guess over the symbols."""
    return length * math.log(symbols) / (delay + 2 * length)


def digit_sequences(order: str = "pixel") -> MemoryTask:
    """scikit-learn's 8x8 digits as sequences: (1797, 64, 1) by ``pixel`` or (1797, 8, 8) by
    ``row``, values in [0, 1]; targets the digits 0..9."""
    if order not in ("pixel", "row"):
        raise ValueError(f"order: expected 'pixel' or 'row', got {order!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            "the sequential digits need scikit-learn, whose package ships the 8x8 digit "
            "images: pip install scikit-learn (or elman[bench])"
        ) from e
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0  # (N, 8, 8)
    inputs = images.reshape(-1, 64, 1) if order == "pixel" else images
    return MemoryTask(inputs, torch.tensor(digits.target, dtype=torch.int64))


def split(task: MemoryTask, test_fraction: float, seed: int) -> tuple[MemoryTask, MemoryTask]:
    """A seeded random split into (train, test)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a value in (0, 1), got {test_fraction!r}")
    perm = torch.randperm(len(task), generator=torch.Generator().manual_seed(seed))
    cut = len(task) - max(1, round(len(task) * test_fraction))
    return MemoryTask(*task.batch(perm[:cut])), MemoryTask(*task.batch(perm[cut:]))
