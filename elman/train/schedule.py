"""Learning-rate schedules as multipliers of the base rate, with JSON-able state.

warm-up (s < W):     m(s) = (s + 1) / W
constant:            m(s) = 1
cosine:              m(s) = m_min + (1 - m_min) * (1 + cos(π p)) / 2,  p = (s - W) / (S - W)
  by time:           p = max((s - W) / (S - W), elapsed / time_limit)
step:                m(s) = γ^floor((s - W) / step_every)
plateau:             m = γ^k, k = times ``plateau_patience`` evaluations brought no gain
"""

from __future__ import annotations

import math

from elman.train.config import TrainConfig


class Schedule:
    """The learning-rate multiplier at each optimizer step ``s`` (0-based)."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.best = math.inf
        self.bad_evals = 0
        self.drops = 0

    def multiplier(self, step: int, elapsed: float = 0.0) -> float:
        """``elapsed``: seconds trained so far (used by ``anneal_by_time`` only)."""
        c = self.config
        if step < c.warmup:
            return (step + 1) / c.warmup
        s = step - c.warmup
        if c.schedule == "constant":
            return 1.0
        if c.schedule == "cosine":
            p = s / max(1, c.span - c.warmup - 1)
            if c.anneal_by_time and c.time_limit is not None:
                p = max(p, elapsed / c.time_limit)
            p = min(1.0, p)
            return c.min_lr + (1 - c.min_lr) * (1 + math.cos(math.pi * p)) / 2
        if c.schedule == "step":
            return c.gamma ** (s // c.step_every)
        if c.schedule == "plateau":
            return c.gamma**self.drops
        raise ValueError(f"unknown schedule {c.schedule!r}")

    def observe(self, val_loss: float) -> None:
        """Feed an evaluation result (only ``plateau`` uses it)."""
        if val_loss < self.best:
            self.best, self.bad_evals = val_loss, 0
            return
        self.bad_evals += 1
        if self.config.schedule == "plateau" and self.bad_evals >= self.config.plateau_patience:
            self.drops, self.bad_evals = self.drops + 1, 0

    def state(self) -> dict:
        return {
            "best": self.best if math.isfinite(self.best) else None,
            "bad_evals": self.bad_evals,
            "drops": self.drops,
        }

    def load_state(self, state: dict) -> None:
        self.best = math.inf if state["best"] is None else state["best"]
        self.bad_evals, self.drops = state["bad_evals"], state["drops"]
