"""Learning-rate schedules as multipliers of the base rate, with JSON-able state, and
ULMFiT's per-layer-group rates and gradual unfreezing (Howard & Ruder 2018).

warm-up (s < W):     m(s) = (s + 1) / W
constant:            m(s) = 1
cosine:              m(s) = m_min + (1 - m_min) * (1 + cos(π p)) / 2,  p = (s - W) / (S - W)
  by time:           p = max((s - W) / (S - W), elapsed / time_limit)
step:                m(s) = γ^floor((s - W) / step_every)
plateau:             m = γ^k, k = times ``plateau_patience`` evaluations brought no gain
slanted (W = 0):     T = S - 1,  t = min(s, T)
                     cut = floor(T · cut_frac)
                     p = t / cut                       if t < cut
                     p = 1 - (t - cut) / (T - cut)     otherwise
                     m(s) = (1 + p · (ratio - 1)) / ratio
  by time:           t = min(T, max(s, T · elapsed / time_limit))

S is the span (``TrainConfig.span``); the last step of the span, s = S - 1, gets the final rate
(m_min for cosine, 1/ratio for slanted). The slanted schedule rises linearly from 1/ratio to 1
over the first cut steps and falls linearly back to 1/ratio; it refuses ``warmup`` (its rise is
the warm-up). Howard & Ruder write the fall's denominator as cut · (1/cut_frac - 1), which is
T - cut when T · cut_frac is whole; where the floor drops a fraction theirs ends below 1/ratio
(negative for small T), so we write T - cut. cut is at least 1 step.

layer group g of G (0 = bottom, G - 1 = the head), discriminative factor D, unfreeze_every U:
  rate:              η_g(s) = lr · m(s) · D^-(G - 1 - g)
  trained groups:    the top k(s) = min(G, 1 + floor(s / U)) (all G without U)
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
        if c.schedule == "slanted":
            return self._slanted(s, elapsed)
        raise ValueError(f"unknown schedule {c.schedule!r}")

    def _slanted(self, s: int, elapsed: float) -> float:
        c = self.config
        T = max(1, c.span - 1)
        t = float(s)
        if c.anneal_by_time and c.time_limit is not None:
            t = max(t, T * elapsed / c.time_limit)
        t = min(t, T)  # past the span (a resume to more steps): the final rate
        cut = max(1, math.floor(T * c.cut_frac))
        p = t / cut if t < cut else 1 - (t - cut) / max(1, T - cut)
        return (1 + p * (c.ratio - 1)) / c.ratio

    def rates(self, step: int, groups: int, elapsed: float = 0.0) -> list[float]:
        """The learning rate of each of ``groups`` layer groups, bottom first, at ``step``."""
        c = self.config
        top = c.lr * self.multiplier(step, elapsed)
        return [top * c.discriminative ** -(groups - 1 - g) for g in range(groups)]

    def unfrozen(self, step: int, groups: int) -> int:
        """How many of ``groups`` layer groups, counted from the top, train at ``step``."""
        every = self.config.unfreeze_every
        return groups if every is None else min(groups, 1 + step // every)

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
