"""Non-monotonically triggered averaged SGD (NT-ASGD; Merity, Keskar & Socher 2017, Alg. 1).

Training runs plain SGD. At an evaluation k with validation loss v_k, averaging starts when

    k > n  and  v_k > min(v_1, ..., v_{k-1-n})            n = ``nonmono``

(the loss is worse than the best of the evaluations more than n evaluations ago). From the
next optimizer step T on, the trainer keeps the mean of the iterates

    w̄_t = (1 / (t - T + 1)) Σ_{i=T..t} w_i                 (as a running mean, one pass)

and every later evaluation and best checkpoint uses w̄ in place of w.

Why our own average rather than ``torch.optim.ASGD(t0=0, lambd=0)`` as Merity does: torch's
ASGD (2.13) takes each step with the rate of the step before (its ``eta`` is updated after
the step), so warm-up and schedules would arrive one step late, and its mean leaves out the
first iterate after the switch (``mu`` stays 1 for two steps). Keeping SGD and averaging
beside it is exact, keeps the optimizer's state one type for the whole run, and makes the
average explicit tensors in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class NTAverage:
    """The trigger, the evaluation history and the running mean of the weights."""

    def __init__(self, nonmono: int) -> None:
        self.nonmono = nonmono
        self.history: list[float] = []  # every validation loss so far, in order
        self.started: int | None = None  # the optimizer step after which averaging began
        self.count = 0  # iterates in the mean
        self.mean: dict[str, Tensor] = {}  # parameter name -> w̄

    @property
    def active(self) -> bool:
        return self.started is not None

    def observe(self, val_loss: float, step: int) -> bool:
        """Feed an evaluation after ``step`` optimizer steps; True when averaging starts here."""
        h, n = self.history, self.nonmono
        switch = not self.active and len(h) > n and val_loss > min(h[: len(h) - n])
        h.append(val_loss)
        if switch:
            self.started = step
        return switch

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Add the current weights (after an optimizer step) to the mean."""
        if not self.active:
            return
        self.count += 1
        for name, p in model.named_parameters():
            if self.count == 1:
                self.mean[name] = p.detach().clone()
            else:
                self.mean[name].lerp_(p.detach(), 1.0 / self.count)

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Within the block the model holds w̄ (when averaging has begun and has an iterate);
        afterwards its own weights come back exactly."""
        if not self.mean:
            yield
            return
        params = dict(model.named_parameters())
        with torch.no_grad():
            saved = {k: params[k].detach().clone() for k in self.mean}
            for k, v in self.mean.items():
                params[k].copy_(v)
        try:
            yield
        finally:
            with torch.no_grad():
                for k, v in saved.items():
                    params[k].copy_(v)

    def state(self) -> tuple[dict[str, Tensor], dict]:
        """Tensors (the mean, by parameter name) and JSON (history, switch step, count)."""
        meta = {"history": list(self.history), "started": self.started, "count": self.count}
        return dict(self.mean), meta

    def load_state(self, tensors: dict[str, Tensor], meta: dict, model: nn.Module) -> None:
        """Inverse of ``state``; the mean goes to the device of ``model``'s parameters."""
        params = dict(model.named_parameters())
        unknown = sorted(set(tensors) - set(params))
        if unknown:
            raise ValueError(f"averaged weights {unknown[:3]} are not the model's parameters")
        self.history = [float(v) for v in meta["history"]]
        self.started, self.count = meta["started"], int(meta["count"])
        self.mean = {k: v.to(params[k].device, params[k].dtype) for k, v in tensors.items()}
        if (self.count > 0) != bool(self.mean) or (self.count > 0 and self.started is None):
            raise ValueError(
                f"averaging state is inconsistent: count {self.count}, "
                f"{len(self.mean)} averaged tensors, started {self.started}"
            )
