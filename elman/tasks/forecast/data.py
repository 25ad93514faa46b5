"""Probabilistic multi-step forecasting with one (global) model for one or many series.

Data: ``elman.data.series.Series`` (from ``load_series``). The last ``valid_steps`` values of
each series (default: one horizon) are held out for validation; scalers (per series, per
covariate column) are fitted on the values before them only, and no training window's
targets reach into them. Known-future covariates are the user's future columns plus, with
``calendar``, sine/cosine calendar features of the timestamps (``elman.data.windows``).

Forecasts: from an origin (the last observed step), the next ``horizon`` values as a point
forecast and quantiles at ``levels``. The direct form emits them at once; the
autoregressive form draws ``samples`` paths, feeding each drawn value back, and reports
the median path value as the point forecast and the empirical quantiles as intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

from elman.data.scaling import SCALINGS, Scaler
from elman.data.series import Series, stamp
from elman.data.windows import calendar_features, window_origins
from elman.fields import option
from elman.nn import CELLS
from elman.nn.checks import check_fields
from elman.tasks.forecast.model import HEADS, MODES, Forecaster
from elman.train.distributed import rank_and_world
from elman.train.evaluation import evaluating

NAME = "forecast"
MIN_WINDOW_SCALE = 0.1


@dataclass(frozen=True, kw_only=True)
class ForecastConfig:
    """The forecaster and how windows are fed to it. Every field with help is also an option
    of `elman train forecast` (``elman.fields``); the defaults are the recommended model."""

    mode: str = option(
        "autoregressive",
        "autoregressive (feed predictions back) or direct (the whole horizon at once)",
        choices=MODES,
    )
    context: int = option(48, "steps the model reads before each forecast")
    horizon: int = option(12, "steps forecast at once (the longest horizon the model can give)")
    cell: str = option("lstm", f"recurrent cell: {', '.join(CELLS)}", choices=CELLS)
    hidden: int = option(64, "hidden units per layer")
    layers: int = option(2, "stacked recurrent layers")
    dropout: float = option(0.1, "dropout between layers and before the head, in [0, 1)")
    head: str = option("gaussian", "gaussian (mean, sd) or quantile (pinball loss)", choices=HEADS)
    levels: tuple[float, ...] = option(
        (0.1, 0.5, 0.9),
        "quantile levels reported (and learned by a quantile head); must include 0.5",
    )
    scaling: str = option(
        "standard", "per-series scaling: standard, minmax, robust or none", choices=SCALINGS
    )
    # instance normalization, as RevIN (Kim et al. 2022): levels beyond the training range do
    # not push the network out of the range it learned; anomaly scoring needs it off
    normalize: bool = option(
        True,
        "shift and scale each window by its context's mean and sd (RevIN); "
        "turn off for anomaly detection",
    )
    # z_t - z_{t-1}: trends and level shifts, also in streams
    difference: bool = option(
        False, "autoregressive: model first differences (trends, level shifts)"
    )
    calendar: bool = option(True, "add calendar features as known-future covariates")
    id_embedding: int = option(0, "size of a learned series-id embedding (0: none)")
    samples: int = option(200, "sample paths of an autoregressive forecast")
    stride: int = option(1, "steps between training windows")
    batch_size: int = option(32, "windows per batch")

    def __post_init__(self) -> None:
        check_fields(
            self,
            {"mode": MODES, "cell": CELLS, "head": HEADS, "scaling": SCALINGS},
            ("context", "horizon", "hidden", "layers", "samples", "stride", "batch_size"),
            rates=("dropout",),
            flags=("calendar", "normalize", "difference"),
        )
        if self.difference and self.mode != "autoregressive":
            raise ValueError(
                "difference=True models steps one at a time: needs the autoregressive mode"
            )
        object.__setattr__(self, "levels", tuple(float(q) for q in self.levels))
        q = self.levels
        if not q or any(not 0 < x < 1 for x in q) or list(q) != sorted(set(q)) or 0.5 not in q:
            raise ValueError(f"levels must ascend in (0, 1) and include 0.5, got {q!r}")
        e = self.id_embedding
        if isinstance(e, bool) or not isinstance(e, int) or e < 0:
            raise ValueError(f"id_embedding must be an integer >= 0, got {self.id_embedding!r}")


@dataclass
class Prepared:
    """One series in model units: scaled target z (T,), scaled past (T, Cp) and future
    (T, Cf) covariates (calendar features appended), its id and scalers."""

    series: Series
    z: Tensor
    past: Tensor
    future: Tensor
    index: int
    scaler: Scaler
    covariate_scalers: list[Scaler] = field(default_factory=list)


def _where(s: Series) -> list[str]:
    """How errors name the target and each covariate column of ``s`` (past, then future)."""
    named = [*s.past_names, *s.future_names]
    count = s.past.shape[1] + s.future.shape[1]
    columns = named if len(named) == count else [str(j) for j in range(count)]
    return [f"series {s.name!r} target"] + [f"series {s.name!r} covariate {c!r}" for c in columns]


def fit_scalers(s: Series, config: ForecastConfig, end: int) -> dict:
    """Scalers of the target and each covariate, fitted on steps before ``end`` only (values
    whose scaling overflows are refused, naming the series and column)."""
    cols = np.concatenate([s.past, s.future], axis=1)[:end]
    where, time = _where(s), s.time[:end]
    return {
        "target": Scaler.fit(s.values[:end], config.scaling, where[0], time).to_json(),
        "covariates": [
            Scaler.fit(cols[:, j], "standard", where[1 + j], time).to_json()
            for j in range(cols.shape[1])
        ],
    }


def prepare(s: Series, index: int, scalers: dict, config: ForecastConfig, extra_future=None):
    """``s`` in model units, with the stored ``scalers``; ``extra_future`` (H, Cf) covariate
    rows beyond the series end (for forecasting past it). A value whose scaling overflows is
    a ValueError naming the series, the column, the step and the value (``Scaler.scaled``):
    training, the CLI and the server all read data through here."""
    target = Scaler.from_json(scalers["target"])
    cov = [Scaler.from_json(c) for c in scalers["covariates"]]
    where, time = _where(s), s.time
    cp = s.past.shape[1]
    past = [cov[j].scaled(s.past[:, j], where[1 + j], time) for j in range(cp)]
    fut = s.future
    if extra_future is not None:
        fut = np.concatenate([fut, extra_future], axis=0)
        time = extend_time(s, len(fut))
    cf = fut.shape[1]
    future = [cov[cp + j].scaled(fut[:, j], where[1 + cp + j], time) for j in range(cf)]
    past = np.stack(past, 1) if cp else s.past
    fut = np.stack(future, 1) if cf else fut
    if config.calendar:
        fut = np.concatenate([fut, calendar_features(extend_time(s, len(fut)), s.freq)], axis=1)
    z = target.scaled(s.values, where[0], s.time)
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    return Prepared(s, as_t(z), as_t(past), as_t(fut), index, target, cov)


def extend_time(s: Series, length: int) -> np.ndarray:
    """The series' timestamps (or integer steps) continued on its grid to ``length`` steps."""
    if length <= len(s.time):
        return s.time[:length]
    if not np.issubdtype(s.time.dtype, np.datetime64):
        return np.arange(s.time[0], s.time[0] + length)
    import pandas as pd

    grid = pd.date_range(s.time[0], periods=length, freq=s.freq)
    return grid.to_numpy()


def check_length(s: Series, config: ForecastConfig, valid_steps: int) -> None:
    """Refuse a series too short for one training window and the validation part, saying
    how many rows it has, how many are needed and which option to lower."""
    need = config.context + config.horizon + valid_steps
    if len(s) < need:
        raise ValueError(
            f"series {s.name!r} has {len(s)} rows; training needs at least context + horizon "
            f"+ validation = {config.context} + {config.horizon} + {valid_steps} = {need}: "
            "lower --context (or --horizon, --valid-steps), or give a longer series"
        )


@dataclass(frozen=True)
class Batch:
    """z (B, C+H) scaled values, past (B, C+H, Cp), future (B, C+H, Cf), ids (B,)."""

    z: Tensor
    past: Tensor
    future: Tensor
    ids: Tensor


def collate(data: Sequence[Prepared], windows: Sequence[tuple[int, int]], span: int, c: int):
    """Windows (series position, origin) -> a Batch of ``span`` steps ending H after origin."""
    rows = [(data[i], t - c + 1) for i, t in windows]
    return Batch(
        torch.stack([p.z[s : s + span] for p, s in rows]),
        torch.stack([p.past[s : s + span] for p, s in rows]),
        torch.stack([p.future[s : s + span] for p, s in rows]),
        torch.tensor([p.index for p, _ in rows], dtype=torch.int64),
    )


def build_model(config: ForecastConfig, past: int, future: int, series: int) -> Forecaster:
    c = config
    return Forecaster(
        c.mode,
        c.horizon,
        past,
        future,
        series,
        c.id_embedding,
        c.cell,
        c.hidden,
        c.layers,
        c.dropout,
        c.head,
        c.levels,
    )


def window_stats(z_context: Tensor, normalize: bool) -> tuple[Tensor, Tensor]:
    """(loc, scale) (B, 1) of each window from its context: mean and standard deviation
    (floored at 0.1 of the series' own scale) when normalizing, else (0, 1)."""
    if not normalize:
        return z_context.new_zeros(len(z_context), 1), z_context.new_ones(len(z_context), 1)
    loc = z_context.mean(1, keepdim=True)
    return loc, z_context.std(1, keepdim=True).nan_to_num(0.0).clamp(min=MIN_WINDOW_SCALE)


def modelled(z: Tensor, future: Tensor, difference: bool) -> tuple[Tensor, Tensor]:
    """What the autoregressive network reads and predicts, (B, T') with its (B, T', F) future
    covariates: z itself, or its first differences Δz_t = z_t - z_{t-1} (one step fewer)."""
    if not difference:
        return z, future
    return z[:, 1:] - z[:, :-1], future[:, 1:]


def batch_loss(model: Forecaster, batch: Batch, config: ForecastConfig) -> tuple[Tensor, int]:
    """Mean loss over the batch's targets (in window units) and their count."""
    context = config.context
    loc, scale = window_stats(batch.z[:, :context], config.normalize)
    batch = replace(batch, z=(batch.z - loc) / scale)
    if model.mode == "autoregressive":
        u, future = modelled(batch.z, batch.future, config.difference)
        lagged, target = u[:, :-1], u[:, 1:]
        theta, _ = model.step_parameters(lagged, future[:, 1:], batch.ids)
    else:
        target = batch.z[:, context:]
        theta = model.horizon_parameters(
            batch.z[:, :context],
            batch.past[:, :context],
            batch.future[:, :context],
            batch.future[:, context:],
            batch.ids,
        )
    return model.head.loss(theta, target), target.numel()


class ForecastTask:
    """The trainer's view of forecasting (see ``elman.train.Task``). ``scalers`` and
    ``names`` are given when rebuilding a trained model, else fitted here."""

    name = NAME

    def __init__(
        self,
        series: Sequence[Series],
        config: ForecastConfig,
        seed: int = 0,
        valid_steps: int | None = None,
        scalers: list[dict] | None = None,
        source: dict | None = None,
    ) -> None:
        if not series:
            raise ValueError("no series to train on")
        c = self.config = config
        self.seed, self.source = seed, source or {}
        self.valid_steps = c.horizon if valid_steps is None else valid_steps
        if isinstance(self.valid_steps, bool) or not isinstance(self.valid_steps, int):
            raise ValueError(f"valid_steps must be an integer >= 1, got {self.valid_steps!r}")
        if self.valid_steps < 1:
            raise ValueError(
                f"--valid-steps must be >= 1 (validation picks the best checkpoint), "
                f"got {self.valid_steps}"
            )
        for s in series:
            check_length(s, c, self.valid_steps)
        ends = [len(s) - self.valid_steps for s in series]
        self.scalers = scalers or [fit_scalers(s, c, e) for s, e in zip(series, ends, strict=True)]
        self.data = [prepare(s, i, self.scalers[i], c) for i, s in enumerate(series)]
        self.train_windows, self.valid_windows = [], []
        for i, (s, end) in enumerate(zip(series, ends, strict=True)):
            where = f"series {s.name!r} (training part)"
            try:
                origins = window_origins(end, c.context, c.horizon, c.stride)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from e
            self.train_windows += [(i, int(t)) for t in origins]
            self.valid_windows += [
                (i, t) for t in range(end - 1, len(s) - c.horizon, c.horizon) if t >= c.context - 1
            ]
        first = self.data[0]
        self.model = build_model(c, first.past.shape[1], first.future.shape[1], len(series))

    def _collate(self, windows) -> Batch:
        c = self.config
        return collate(self.data, windows, c.context + c.horizon, c.context)

    def batches(self, epoch: int) -> list[Batch]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        rank, world = rank_and_world()
        order = torch.randperm(len(self.train_windows), generator=g).tolist()
        size = self.config.batch_size
        chunks = [order[k : k + size] for k in range(0, len(order), size)]
        return [
            self._collate([self.train_windows[j] for j in chunk[rank::world]])
            for chunk in chunks
            if len(chunk) >= world
        ]

    def loss(self, model: nn.Module, batch: Batch, carry):
        loss, n = batch_loss(model, batch, self.config)
        return loss, n, None

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        if not self.valid_windows:
            raise ValueError("no validation window fits: give longer series or a smaller context")
        with evaluating(model) as to_model:
            loss, _ = batch_loss(model, to_model(self._collate(self.valid_windows)), self.config)
        return {"val_loss": float(loss)}

    def describe(self) -> dict:
        return {
            "model": asdict(self.config),
            "scalers": self.scalers,
            "names": [p.series.name for p in self.data],
            "sizes": {"past": self.data[0].past.shape[1], "future": self.data[0].future.shape[1]},
            "valid_steps": self.valid_steps,
            "train_end": [
                stamp(p.series.time[len(p.series) - self.valid_steps - 1]) for p in self.data
            ],
            "source": self.source,
            "seed": self.seed,
        }


__all__ = ["Batch", "ForecastConfig", "ForecastTask", "Prepared", "prepare"]
