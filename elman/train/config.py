"""The trainer's configuration: one frozen dataclass, validated at construction."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields

from elman.fields import option

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nt-asgd")
# how a monitored metric's name says which way is better; anything else needs "+" or "-"
LOWER_BETTER = ("loss", "perplexity", "error", "bits", "cer", "wer", "mae", "mse", "rmse")
HIGHER_BETTER = ("accuracy", "f1", "auc", "precision", "recall")
SCHEDULES = ("constant", "cosine", "step", "plateau", "slanted")


def _number(
    name: str,
    value: object,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value  # NaN
    if ok:
        ok = low < value if low_open else low <= value
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be a number in {left}{low}, {high}{right}, got {value!r}")


def _count(name: str, value: object, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def monitor_sign(monitor: object) -> int:
    """+1 when the metric ``monitor`` names is better higher, -1 when lower."""
    m = monitor
    if not isinstance(m, str) or not m.lstrip("+-") or m.count("+") + m.count("-") > 1:
        raise ValueError(f"monitor must be a metric name such as 'val_accuracy', got {m!r}")
    if m[0] in "+-":
        return 1 if m[0] == "+" else -1
    words = set(re.split(r"[_\W]+", m.lower()))
    lower, higher = words & set(LOWER_BETTER), words & set(HIGHER_BETTER)
    if bool(lower) == bool(higher):
        raise ValueError(
            f"monitor {m!r}: cannot tell whether it is better higher or lower; write "
            f"'+{m}' (higher) or '-{m}' (lower)"
        )
    return 1 if higher else -1


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train. Every field with help is also an option of `elman train`
    (``elman.fields``). Runs are bit-reproducible on the CPU only (and not with
    ``anneal_by_time``, whose rates depend on the machine's speed)."""

    steps: int = option(1000, "optimizer steps (the schedule spans them)")
    # a resume to a new ``steps`` keeps the run's span, so its rate goes on from where it was
    schedule_steps: int | None = None
    time_limit: float | None = option(None, "stop after this many seconds of training")
    anneal_by_time: bool = option(
        False,
        "with --time-limit: the cosine or slanted schedule also advances with elapsed time, so "
        "a run cut short by the time limit still ends annealed (not bit-reproducible)",
    )
    optimizer: str = option(
        "adam",
        f"one of {', '.join(OPTIMIZERS)} (nt-asgd: plain SGD without momentum that switches to "
        "averaged weights when validation stalls; Merity et al. 2017)",
        choices=OPTIMIZERS,
    )
    lr: float = option(2e-3, "peak learning rate")
    weight_decay: float = option(0.0, "L2 / decoupled (adamw) weight decay")
    momentum: float = option(0.9, "momentum for sgd and rmsprop")
    nonmono: int = option(
        5,
        "nt-asgd: evaluations a worse validation loss looks back past before averaging starts "
        "(it starts when the loss is worse than the best of the evaluations more than this "
        "many evaluations ago)",
    )
    beta1: float = option(0.9, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    schedule: str = option(
        "cosine", f"learning-rate schedule: {', '.join(SCHEDULES)}", choices=SCHEDULES
    )
    warmup: int = option(0, "linear warm-up steps (not with the slanted schedule: it has its own)")
    min_lr: float = option(0.1, "cosine: final learning rate as a fraction of --lr")
    step_every: int = option(1000, "step schedule: steps between decays")
    gamma: float = option(0.5, "step/plateau schedule: decay factor")
    plateau_patience: int = option(2, "plateau schedule: evaluations without gain before a decay")
    cut_frac: float = option(
        0.1,
        "slanted schedule: fraction of the span spent rising to --lr (then it decays linearly; "
        "Howard & Ruder 2018)",
    )
    ratio: float = option(
        32.0, "slanted schedule: how much smaller the first and the last rate are than --lr"
    )
    # ULMFiT's fine-tuning (Howard & Ruder 2018); both need a task with layer groups
    discriminative: float = option(
        1.0,
        "discriminative rates: each layer group trains at the rate of the group above divided "
        "by this (ULMFiT: 2.6; needs a task with layer groups)",
    )
    unfreeze_every: int | None = option(
        None,
        "gradual unfreezing: train only the top layer group at first and unfreeze the next "
        "one down every this many steps (needs a task with layer groups)",
    )
    # 1.0-5.0 suits RNNs: unclipped, exploding gradients can wreck a run in one step
    # (Pascanu et al. 2013)
    clip_norm: float | None = option(
        1.0, "clip the global gradient norm to this (0 turns clipping off)"
    )
    clip_value: float | None = option(None, "clamp every gradient entry to +-this")
    accumulate: int = option(1, "batches per optimizer step (gradient accumulation)")
    eval_every: int = option(200, "steps between evaluations and checkpoints")
    patience: int | None = option(
        None, "early stopping: evaluations without a better validation loss"
    )
    monitor: str = option(
        "val_loss",
        "the validation metric that picks the best checkpoint and drives early stopping (e.g. "
        "val_accuracy); a name with loss, perplexity, error, bits, cer, wer, mae or mse in it "
        "is better lower, one with accuracy, f1, auc, precision or recall higher; a leading "
        "'+' (higher) or '-' (lower) says it for any other",
    )
    seed: int = option(0, "seed for everything random (initialisation, dropout, data order)")
    log_every: int = option(10, "steps between metrics-log lines")
    progress: bool = True
    device: str = option(
        "cpu",
        "cpu, cuda, cuda:N or auto (CUDA when available); under torchrun each rank takes the "
        "GPU of its local rank",
    )

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "accumulate",
            "eval_every",
            "step_every",
            "plateau_patience",
            "log_every",
            "nonmono",
        ):
            _count(name, getattr(self, name))
        _count("warmup", self.warmup, 0)
        _count("seed", self.seed, 0)
        if self.patience is not None:
            _count("patience", self.patience)
        if self.schedule_steps is not None:
            _count("schedule_steps", self.schedule_steps)
        if self.unfreeze_every is not None:
            _count("unfreeze_every", self.unfreeze_every)
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
        _number("cut_frac", self.cut_frac, 0, 1, low_open=True, high_open=True)
        _number("ratio", self.ratio, 1, math.inf, high_open=True)
        _number("discriminative", self.discriminative, 0, math.inf, low_open=True, high_open=True)
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
        monitor_sign(self.monitor)
        if self.anneal_by_time and self.time_limit is None:
            raise ValueError("anneal_by_time needs a time_limit (seconds), got time_limit=None")
        if self.schedule == "slanted" and self.warmup:
            raise ValueError(
                f"warmup must be 0 with schedule='slanted' (its rise over cut_frac of the span "
                f"is its warm-up), got warmup={self.warmup}"
            )

    @property
    def monitored(self) -> str:
        """The monitored metric's name, without a direction sign."""
        return self.monitor.lstrip("+-")

    @property
    def monitor_sign(self) -> int:
        """+1 when the monitored metric is better higher, -1 when lower."""
        return monitor_sign(self.monitor)

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
