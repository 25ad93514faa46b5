"""The trainer's configuration: one frozen dataclass, validated at construction."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "step", "plateau")


def _number(
    name: str, value: object, low: float, high: float = float("inf"), low_open: bool = False
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and value == value:
        ok = (low < value if low_open else low <= value) and value <= high
    if not ok:
        left = "(" if low_open else "["
        raise ValueError(f"{name} must be a number in {left}{low}, {high}], got {value!r}")


def _count(name: str, value: object, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every field is also a CLI option.

    steps: optimizer steps to run (the schedule spans them).
    schedule_steps: the steps the learning-rate schedule spans (None: ``steps``); a resume
        to a new ``steps`` keeps the run's span, so its rate goes on from where it was.
    time_limit: stop after this many seconds of training even if steps remain (None: no limit).
    anneal_by_time: with ``time_limit``, the cosine schedule advances by whichever is further
        along, steps or elapsed time, so a run that runs out of time still ends annealed. The
        learning rates then depend on the machine's speed: such a run is not reproducible
        bit for bit.
    optimizer: "adam", "adamw", "sgd" (with ``momentum``) or "rmsprop".
    lr, weight_decay, momentum, beta1, beta2: the optimizer's hyper-parameters.
    schedule: "constant"; "cosine" (decay to ``min_lr`` x lr at the last step); "step"
        (multiply by ``gamma`` every ``step_every`` steps); "plateau" (multiply by ``gamma``
        after ``plateau_patience`` evaluations without improvement).
    warmup: steps of linear warm-up from 0 to lr, before any schedule.
    clip_norm: rescale gradients to this global L2 norm (None: off). 1.0-5.0 suits RNNs;
        without clipping, exploding gradients can wreck a run in one step (Pascanu et al. 2013).
    clip_value: clamp each gradient entry to [-clip_value, clip_value] (None: off).
    accumulate: batches whose gradients are summed per optimizer step.
    eval_every: evaluate (and checkpoint) every this many steps, and at the end.
    patience: stop after this many evaluations without a better validation loss (None: off).
    seed: seeds every random number generator the run uses.
    log_every: steps between metrics-log lines.
    progress: show a progress bar.
    device: "cpu", "cuda", "cuda:N" or "auto" (CUDA when available). Under torchrun each rank
        uses its own GPU, and the process group uses nccl on CUDA, gloo on the CPU. Runs are
        bit-reproducible on the CPU only.
    """

    steps: int = 1000
    schedule_steps: int | None = None
    time_limit: float | None = None
    anneal_by_time: bool = False
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    schedule: str = "cosine"
    warmup: int = 0
    min_lr: float = 0.1
    step_every: int = 1000
    gamma: float = 0.5
    plateau_patience: int = 2
    clip_norm: float | None = 1.0
    clip_value: float | None = None
    accumulate: int = 1
    eval_every: int = 200
    patience: int | None = None
    seed: int = 0
    log_every: int = 10
    progress: bool = True
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "accumulate",
            "eval_every",
            "step_every",
            "plateau_patience",
            "log_every",
        ):
            _count(name, getattr(self, name))
        _count("warmup", self.warmup, 0)
        _count("seed", self.seed, 0)
        if self.patience is not None:
            _count("patience", self.patience)
        if self.schedule_steps is not None:
            _count("schedule_steps", self.schedule_steps)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        _number("lr", self.lr, 0, low_open=True)
        _number("weight_decay", self.weight_decay, 0)
        _number("momentum", self.momentum, 0, 1)
        _number("beta1", self.beta1, 0, 1)
        _number("beta2", self.beta2, 0, 1)
        _number("min_lr", self.min_lr, 0, 1)
        _number("gamma", self.gamma, 0, 1, low_open=True)
        for name in ("time_limit", "clip_norm", "clip_value"):
            if getattr(self, name) is not None:
                _number(name, getattr(self, name), 0, low_open=True)
        for name in ("anneal_by_time", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.device, str) or not re.fullmatch(
            r"cpu|auto|cuda(:\d+)?", self.device
        ):
            raise ValueError(
                f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}"
            )
        if self.anneal_by_time and self.time_limit is None:
            raise ValueError("anneal_by_time needs a time_limit (seconds), got time_limit=None")

    @property
    def span(self) -> int:
        """The steps the learning-rate schedule spans."""
        return self.steps if self.schedule_steps is None else self.schedule_steps

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"train config: unknown field(s) {unknown}")
        return cls(**data)
