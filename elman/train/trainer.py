"""A task-agnostic training loop: BPTT and truncated BPTT, clipping, schedules, early stopping,
atomic checkpoints with exact resume, a NaN guard, progress bars, metrics logs, DDP.

A task supplies the model, its batches, a loss and an evaluation (``Task``). For truncated
BPTT a task's ``loss`` returns the state to carry into the next batch; the trainer detaches it
after every batch, so gradients flow back at most one batch (k steps) while the state carries
the whole history, and it resets the carry at each new epoch.
"""

from __future__ import annotations

import ast
import contextlib
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from elman.files import remove_stale_temporaries
from elman.train import checkpoint as ckpt
from elman.train.averaging import NTAverage
from elman.train.config import TrainConfig
from elman.train.device import move, resolve_device
from elman.train.distributed import is_main, rank_and_world
from elman.train.metrics import MetricsLog, Window, logged_seconds, plot_curves, truncate_log
from elman.train.schedule import Schedule
from elman.train.watch import notify

LAST, BEST, LOG, CURVES = "last.safetensors", "best.safetensors", "metrics.jsonl", "loss.png"


class Task(Protocol):
    """What the trainer needs from a task."""

    name: str
    model: nn.Module

    def batches(self, epoch: int) -> Sequence[Any]:
        """This process's batches for ``epoch``, in order (the same every time it is asked)."""

    def loss(self, model: nn.Module, batch: Any, carry: Any) -> tuple[Tensor, int, Any]:
        """Mean loss over the batch's targets, their count, and the state to carry on; a
        fourth item, if any, is what ``train_loss`` reports instead of the loss (e.g. the
        data term alone when the loss adds a regulariser's penalty)."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics, including ``val_loss``."""

    def describe(self) -> dict:
        """JSON from which the task (and its model) can be rebuilt."""

    # Optional: ``at_step(step, steps)`` is called before each optimizer step, for schedules
    # the task owns (e.g. scheduled sampling's rate); it must depend on its arguments only,
    # so a resumed run repeats it exactly.
    #
    # Optional: ``layer_groups() -> list[list[nn.Parameter]]`` partitions the parameters of
    # ``model`` into groups from the bottom (the embedding) to the top (the head), for
    # ULMFiT's discriminative rates and gradual unfreezing (``TrainConfig.discriminative``,
    # ``unfreeze_every``). Every parameter that requires grad must be in exactly one group (a
    # tied weight, e.g. an LM's output layer sharing the embedding, once), and no group may be
    # empty; the trainer checks this once, at construction. The order of the groups and within
    # them is part of the run: keep it fixed, as a resume maps optimizer state by name. A task
    # without the method is one group.


class NonFiniteError(RuntimeError):
    """The loss or the gradients became NaN or infinite; the run stopped."""


@dataclass
class Position:
    """Where a run is: everything besides tensors needed to resume it exactly."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    best: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators (Elman uses no other)."""
    random.seed(seed)
    torch.manual_seed(seed)


def layer_groups(task: Task) -> list[list[nn.Parameter]]:
    """``task.layer_groups()`` checked to hold every trainable parameter of ``task.model``
    exactly once; without the method, one group of all parameters (in the model's order, the
    order the optimizer state of runs from before layer groups follows)."""
    model = task.model
    if not hasattr(task, "layer_groups"):
        return [list(model.parameters())]
    groups = [list(group) for group in task.layer_groups()]
    if not groups:
        raise ValueError(f"task {task.name!r}: layer_groups() gave no groups, expected >= 1")
    names = {id(p): name for name, p in model.named_parameters()}
    where: dict[int, int] = {}
    for g, group in enumerate(groups):
        if not group:
            raise ValueError(f"task {task.name!r}: layer_groups() group {g} is empty")
        for p in group:
            if id(p) not in names:
                what = f"tensor of shape {tuple(p.shape)}" if isinstance(p, Tensor) else repr(p)
                raise ValueError(
                    f"task {task.name!r}: layer_groups() group {g} holds a {what} that is not "
                    "a parameter of task.model"
                )
            if id(p) in where:
                raise ValueError(
                    f"task {task.name!r}: layer_groups() has parameter {names[id(p)]!r} in "
                    f"group {where[id(p)]} and again in group {g}; each parameter (a tied "
                    "weight too) belongs to exactly one group"
                )
            where[id(p)] = g
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in where]
    if missing:
        raise ValueError(
            f"task {task.name!r}: layer_groups() leaves out parameter(s) {missing} of "
            "task.model; every parameter that requires grad must be in one group"
        )
    return groups


def build_optimizer(params, c: TrainConfig) -> torch.optim.Optimizer:
    if c.optimizer == "adam":
        return torch.optim.Adam(params, c.lr, (c.beta1, c.beta2), weight_decay=c.weight_decay)
    if c.optimizer == "adamw":
        return torch.optim.AdamW(params, c.lr, (c.beta1, c.beta2), weight_decay=c.weight_decay)
    if c.optimizer == "sgd":
        return torch.optim.SGD(params, c.lr, c.momentum, weight_decay=c.weight_decay)
    if c.optimizer == "nt-asgd":  # plain SGD; the trainer's NTAverage does the averaging
        return torch.optim.SGD(params, c.lr, 0.0, weight_decay=c.weight_decay)
    if c.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    raise ValueError(f"unknown optimizer {c.optimizer!r}")


def _detach(carry: Any) -> Any:
    if carry is None:
        return None
    if isinstance(carry, Tensor):
        return carry.detach()
    return tuple(t.detach() for t in carry)


def _carry_tensors(carry: Any) -> tuple[dict[str, Tensor], str]:
    if carry is None:
        return {}, "none"
    if isinstance(carry, Tensor):
        return {"carry.0": carry}, "tensor"
    return {f"carry.{i}": t for i, t in enumerate(carry)}, "tuple"


def _carry_from(tensors: dict[str, Tensor], kind: str) -> Any:
    parts = [tensors[f"carry.{i}"] for i in range(len(ckpt.unprefixed("carry.", tensors)))]
    return None if kind == "none" else parts[0] if kind == "tensor" else tuple(parts)


class Trainer:
    """Trains ``task.model`` by ``config``, writing checkpoints and logs under ``out``."""

    def __init__(self, task: Task, config: TrainConfig, out: str | Path) -> None:
        self.task, self.config, self.out = task, config, Path(out)
        self.device = resolve_device(config.device)
        task.model.to(self.device)
        self.groups = layer_groups(task)  # bottom first; one optimizer param group each
        for name, off in (("discriminative", 1.0), ("unfreeze_every", None)):
            if len(self.groups) == 1 and getattr(config, name) != off:
                raise ValueError(
                    f"{name}={getattr(config, name)!r} acts on layer groups, but task "
                    f"{task.name!r} has one (see Task.layer_groups); leave {name} at {off}"
                )
        self.optimizer = build_optimizer([{"params": g} for g in self.groups], config)
        names = {id(p): name for name, p in task.model.named_parameters()}
        self._names = [names[id(p)] for group in self.groups for p in group]
        self.schedule = Schedule(config)
        nt = config.optimizer == "nt-asgd"
        self.averaging: NTAverage | None = NTAverage(config.nonmono) if nt else None
        self.position = Position()
        self.carry: Any = None
        self._epoch_batches: tuple[int, Sequence[Any]] | None = None
        self.model: nn.Module = task.model
        if rank_and_world()[1] > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(task.model, device_ids=ids)

    # ---- checkpoints -------------------------------------------------------------------
    def _meta(self, **extra: Any) -> dict:
        return {
            "task": self.task.name,
            "task_config": self.task.describe(),
            "train": self.config.to_json(),
            **extra,
        }

    def save(self) -> Path | None:
        """Write ``last.safetensors``: model, optimizer, schedule, position, carry, RNG."""
        if not is_main():
            return None
        opt_tensors, opt_meta = ckpt.optimizer_state(self.optimizer, self._names)
        carry, carry_kind = _carry_tensors(self.carry)
        tensors = {
            **ckpt.prefixed("model.", self.task.model.state_dict()),
            **ckpt.prefixed("optim.", opt_tensors),
            **carry,
            "rng.torch": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        averaging = {}
        if self.averaging is not None:
            avg_tensors, averaging["averaging"] = self.averaging.state()
            tensors.update(ckpt.prefixed("avg.", avg_tensors))
        position = asdict(self.position)
        if not self._timed():  # wall time kept out: an exact resume then hashes the same
            del position["seconds"]
        meta = self._meta(
            position=position,
            optim=opt_meta,
            schedule=self.schedule.state(),
            carry=carry_kind,
            rng_python=repr(random.getstate()),
            **averaging,
        )
        return ckpt.save_checkpoint(self.out / LAST, tensors, meta)

    def _timed(self) -> bool:
        """Whether elapsed time steers the run (a time limit), so resuming needs it."""
        return self.config.time_limit is not None

    def restore(self, path: str | Path | None = None) -> None:
        """Continue exactly from a ``save``d checkpoint (default: ``out/last.safetensors``)."""
        tensors, meta = ckpt.load_checkpoint(path or self.out / LAST, self.task.name)
        self.task.model.load_state_dict(ckpt.unprefixed("model.", tensors))
        # runs from before layer groups name no parameters: theirs were in the model's order
        optim = {"names": [n for n, _ in self.task.model.named_parameters()], **meta["optim"]}
        ckpt.load_optimizer_state(
            self.optimizer, ckpt.unprefixed("optim.", tensors), optim, self._names
        )
        self.schedule.load_state(meta["schedule"])
        self.position = Position(**meta["position"])
        if "seconds" not in meta["position"]:  # untimed runs: the log tells the time so far
            self.position.seconds = logged_seconds(self.out / LOG, self.position.step)
        self.carry = move(_carry_from(tensors, meta["carry"]), self.device)
        torch.set_rng_state(tensors["rng.torch"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        random.setstate(ast.literal_eval(meta["rng_python"]))
        if self.averaging is not None and "averaging" in meta:  # older runs: not yet averaging
            avg = ckpt.unprefixed("avg.", tensors)
            self.averaging.load_state(avg, meta["averaging"], self.task.model)

    def averaged(self) -> contextlib.AbstractContextManager[None]:
        """``with trainer.averaged():`` the model holds the averaged weights (nt-asgd, once
        averaging has begun; otherwise its own), which come back exactly afterwards."""
        if self.averaging is None:
            return contextlib.nullcontext()
        return self.averaging.swapped_in(self.task.model)

    # ---- the loop ----------------------------------------------------------------------
    def _next_batch(self) -> Any:
        p = self.position
        cached = self._epoch_batches
        if cached is None or cached[0] != p.epoch:
            cached = self._epoch_batches = (p.epoch, self.task.batches(p.epoch))
        if p.batch >= len(cached[1]):
            p.epoch, p.batch, self.carry = p.epoch + 1, 0, None
            return self._next_batch()
        p.batch += 1
        return cached[1][p.batch - 1]

    def _step(self) -> tuple[float, int, float]:
        """One optimizer step over ``accumulate`` batches: (mean loss, targets, grad norm)."""
        c, step = self.config, self.position.step
        rates = self.schedule.rates(step, len(self.groups), self.position.seconds)
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = lr
        if hasattr(self.task, "at_step"):
            self.task.at_step(step, c.span)
        self.optimizer.zero_grad(set_to_none=True)
        total, count = 0.0, 0
        for _ in range(c.accumulate):
            batch = move(self._next_batch(), self.device)
            loss, n, carry, *shown = self.task.loss(self.model, batch, self.carry)
            if not torch.isfinite(loss):
                raise NonFiniteError(self._nonfinite(f"loss is {loss.item()}"))
            (loss / c.accumulate).backward()
            self.carry = _detach(carry)
            shown_loss = shown[0] if shown else loss
            if isinstance(shown_loss, Tensor):
                shown_loss = shown_loss.item()
            total, count = total + float(shown_loss) * n, count + n
        self._freeze(step)
        params = [p for p in self.task.model.parameters() if p.grad is not None]
        if c.clip_value is not None:
            nn.utils.clip_grad_value_(params, c.clip_value)
        norm = nn.utils.clip_grad_norm_(params, c.clip_norm or math.inf)
        if not torch.isfinite(norm):
            raise NonFiniteError(self._nonfinite(f"gradient norm is {norm.item()}"))
        self.optimizer.step()
        if self.averaging is not None:
            self.averaging.update(self.task.model)
        self.position.step += 1
        return total / max(count, 1), count, float(norm)

    def _freeze(self, step: int) -> None:
        """Gradual unfreezing: drop the gradients of the groups still frozen at ``step``. After
        backward, not via requires_grad, which DDP does not allow to change once it wraps the
        model; the optimizers skip a parameter without a gradient (no update, no weight decay,
        no moments), and clipping and the NaN guard see the trained parameters only."""
        frozen = len(self.groups) - self.schedule.unfrozen(step, len(self.groups))
        for group in self.groups[:frozen]:
            for p in group:
                p.grad = None

    def _nonfinite(self, what: str) -> str:
        kept = self.out / LAST
        return (
            f"step {self.position.step + 1}: {what}; training stopped. "
            + (f"The last good checkpoint {str(kept)!r} is kept; " if kept.exists() else "")
            + "try a lower lr, gradient clipping (clip_norm) or check the data"
        )

    def evaluate(self) -> dict[str, float]:
        """Run the task's evaluation in eval mode without gradients (on the averaged weights
        once nt-asgd averages)."""
        self.task.model.eval()
        with torch.no_grad(), self.averaged():
            metrics = self.task.evaluate(self.task.model)
        self.task.model.train()
        return metrics

    def _after_eval(self, metrics: dict[str, float], log: MetricsLog | None) -> bool:
        """Track the best model (by ``config.monitor``) and early stopping; True when patience
        is exhausted."""
        p, val = self.position, metrics["val_loss"]
        score = self._monitored(metrics)
        self.schedule.observe(val)
        record, avg = {"step": p.step, **metrics}, self.averaging
        if avg is not None:
            if avg.mean:
                record["averaged"] = True  # these metrics are of the averaged weights
            if avg.observe(val, p.step):
                record["asgd_started"] = p.step  # averaging covers the steps after this one
        if log is not None:
            log.write(record)
        if p.best is None or self.config.monitor_sign * (score - p.best) > 0:
            p.best, p.best_step, p.evals_since_best = score, p.step, 0
            extra = (
                {"averaged": bool(avg.mean), "asgd_started": avg.started} if avg is not None else {}
            )
            if is_main():
                with self.averaged():  # the model that was evaluated
                    ckpt.save_checkpoint(
                        self.out / BEST,
                        ckpt.prefixed("model.", self.task.model.state_dict()),
                        self._meta(step=p.step, metrics=metrics, **extra),
                    )
        else:
            p.evals_since_best += 1
        return self.config.patience is not None and p.evals_since_best >= self.config.patience

    def _monitored(self, metrics: dict[str, float]) -> float:
        name = self.config.monitored
        if name not in metrics:
            raise ValueError(
                f"monitor {self.config.monitor!r}: this task's validation reports "
                f"{', '.join(sorted(metrics))}; choose one of them"
            )
        return float(metrics[name])

    def fit(self, until: int | None = None) -> dict[str, float]:
        """Train to ``config.steps`` (or pause after step ``until``); returns the last metrics."""
        c, p = self.config, self.position
        stop_at = min(c.steps, until or c.steps)
        if is_main():
            for name in (LAST, BEST, LOG, CURVES):  # what a killed write left behind
                remove_stale_temporaries(self.out / name)
            if p.step == 0:  # a fresh run starts a fresh log (--overwrite)
                (self.out / LOG).unlink(missing_ok=True)
            else:  # steps after the checkpoint are redone: their lines would repeat
                truncate_log(self.out / LOG, p.step)
        log = MetricsLog(self.out / LOG) if is_main() else None
        self.task.model.train()
        metrics: dict[str, float] = {}
        bar = tqdm(
            total=c.steps,
            initial=p.step,
            disable=not (c.progress and is_main()),
            unit="step",
            dynamic_ncols=True,
        )
        start, window = time.perf_counter() - p.seconds, Window()
        stopped_early = False
        try:
            while p.step < stop_at:
                if c.time_limit is not None and time.perf_counter() - start > c.time_limit:
                    break
                loss, n, norm = self._step()
                p.seconds = time.perf_counter() - start
                bar.update(1)
                window.add(loss, n)
                self._log_unfrozen(log)
                if p.step % c.log_every == 0 or p.step == stop_at:
                    self._log_train(window, norm, bar, log)
                if p.step % c.eval_every == 0:
                    metrics = self.evaluate()
                    stopped_early = self._after_eval(metrics, log)
                    self.save()
                    notify(p.step, metrics)
                    if stopped_early:
                        break
        finally:
            bar.close()
        paused = p.step == stop_at < c.steps and not stopped_early
        return self._finish(metrics, log, paused)

    def _log_unfrozen(self, log: MetricsLog | None) -> None:
        """With gradual unfreezing, ``{"step": s, "unfrozen": k}`` for the first step and each
        step s (1-based) that trained more groups than the one before: k groups from the top."""
        step, groups = self.position.step - 1, len(self.groups)  # the step just taken, 0-based
        if log is None or self.config.unfreeze_every is None:
            return
        k = self.schedule.unfrozen(step, groups)
        if step == 0 or k != self.schedule.unfrozen(step - 1, groups):
            log.write({"step": step + 1, "unfrozen": k})

    def _log_train(self, window: Window, norm: float, bar: tqdm, log: MetricsLog | None) -> None:
        loss, rate = window.flush()
        started = self.averaging.started if self.averaging is not None else None
        bar.set_postfix(loss=f"{loss:.3f}", **({} if started is None else {"asgd_from": started}))
        if log is not None:
            log.write(
                {
                    "step": self.position.step,
                    "train_loss": loss,
                    "lr": self.optimizer.param_groups[-1]["lr"],  # the top group's
                    "grad_norm": norm,
                    f"{getattr(self.task, 'unit', 'tokens')}_per_s": rate,
                    "seconds": self.position.seconds,
                }
            )

    def _finish(
        self, metrics: dict[str, float], log: MetricsLog | None, paused: bool
    ) -> dict[str, float]:
        """A run that finished or ran out of time gets a last evaluation; every run a checkpoint
        (a pause adds no evaluation, so resuming it matches an uninterrupted run)."""
        off_grid = self.position.step % self.config.eval_every != 0
        if off_grid and not paused:
            metrics = self.evaluate()
            self._after_eval(metrics, log)
        if off_grid or paused:
            self.save()
        if log is not None:
            log.close()
            plot_curves(self.out / LOG, self.out / CURVES)
        if off_grid and not paused:
            notify(self.position.step, metrics)
        return metrics
