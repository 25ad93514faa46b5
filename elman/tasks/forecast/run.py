"""A trained forecaster as the task's ``Run`` (``SPEC``): the model with what it needs to read
new data like its training data (per-series scalers, series names, covariate columns), and
what the shells ask of it: forecasts, a stream, the ONNX graph and its description.

Forecast runs are scored by backtesting (``elman.tasks.forecast.trained.backtest``), not by
``evaluate``: a score needs origins after the training data, which the run's own file does
not have past its validation part.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from elman.data.scaling import Scaler
from elman.data.series import Series, read_table
from elman.graphs import onnx as ox
from elman.graphs.graph import Export, held_out
from elman.tasks import spaces
from elman.tasks.forecast import trained as runs
from elman.tasks.forecast.anomaly import Detector
from elman.tasks.forecast.data import (
    NAME,
    ForecastConfig,
    Prepared,
    build_model,
    modelled,
    prepare,
    window_stats,
)
from elman.tasks.forecast.graphs import forecaster_graphs
from elman.tasks.forecast.model import Forecaster
from elman.tasks.forecast.stream import ForecastStream
from elman.tasks.rundir import open_model
from elman.tasks.spec import Run, TaskSpec
from elman.train.checkpoint import reading

# what a run's source may hold: its kind and ``load_series``' options
SOURCE_KEYS = {"kind", "path", "targets", "time_col", "id_col", "past", "future", "freq", "missing"}


class ForecastRun(Run):
    """A loaded forecaster (see ``Run``); ``info`` is its checkpoint's ``task_config``: the
    data source, the scalers and names of the series, the covariate sizes."""

    def __init__(
        self, path: str | Path, which: str, model: Forecaster, meta: dict, config: ForecastConfig
    ) -> None:
        super().__init__(path, which, model, meta, config)
        info = self.info = meta["task_config"]
        for key, kind in (("source", dict), ("scalers", list), ("names", list)):
            if not isinstance(info[key], kind):
                raise TypeError(f"task_config.{key} is a {type(info[key]).__name__}")
        unknown = set(info["source"]) - SOURCE_KEYS
        if unknown:
            raise ValueError(f"task_config.source has unknown keys {sorted(unknown)}")
        self.scalers, self.names = info["scalers"], info["names"]
        if len(self.scalers) != len(self.names):
            raise ValueError(f"{len(self.scalers)} scalers for {len(self.names)} series")
        self.future_names = list(info["source"].get("future") or [])
        self.future_size = int(info["sizes"]["future"])
        self.train_end = info.get("train_end")  # absent in runs of older versions
        for i in range(len(self.names)):
            self.target_scaler(i)

    # ---- reading data like the training data -------------------------------------------------
    def lookup(self, name: str) -> int:
        """The id of the series ``name`` (any name, for a model of one series)."""
        if name in self.names:
            return self.names.index(name)
        if len(self.names) == 1:
            return 0
        raise ValueError(f"series {name!r} is not one the model knows: {self.names[:10]}")

    def target_scaler(self, index: int) -> Scaler:
        return Scaler.from_json(self.scalers[index]["target"])

    def prepare(self, s: Series, extra_future: np.ndarray | None = None) -> Prepared:
        i = self.lookup(s.name)
        return prepare(s, i, self.scalers[i], self.config, extra_future)

    def series(self, path: str | Path | None = None) -> list[Series]:
        """The series of the file ``path`` (default: the run's training file), read with the
        run's own column options."""
        source = self.info["source"]
        if path is not None:
            source = source | {"kind": "file", "path": str(Path(path).resolve())}
        return runs.load_source(source)

    def training_series(self) -> list[Series]:
        """The part of each series the model trained on (its file less the validation part)."""
        cut = self.info["valid_steps"]
        return [s.head(len(s) - cut) for s in runs.load_source(self.info["source"])]

    def future_rows(self, path: str | None, s: Series, horizon: int) -> np.ndarray | None:
        """The known-future covariates of ``s`` over the next ``horizon`` steps, read from the
        CSV ``path`` (columns as in training); None for a model that reads none."""
        if s.future.shape[1] == 0:
            return None
        if path is None:
            raise ValueError(
                f"the model reads {s.future.shape[1]} known-future covariate(s): give their "
                f"values over the next {horizon} steps with --future FILE"
            )
        frame, names = read_table(path), self.future_names
        missing = [c for c in names if c not in frame.columns]
        if missing or len(frame) < horizon:
            raise ValueError(
                f"--future {path}: needs columns {names} with {horizon} rows; "
                f"missing {missing}, {len(frame)} row(s)"
            )
        return frame[names].to_numpy(dtype=float)[:horizon]

    # ---- the Run interface -------------------------------------------------------------------
    def describe(self) -> dict:
        # /models has always shown a forecaster's step as null: kept, replies stay identical
        return super().describe() | {"step": None}

    def details(self) -> dict:
        c = self.config
        return {
            "mode": c.mode,
            "horizon": c.horizon,
            "context": c.context,
            "levels": list(c.levels),
            "series": self.names[:100],
            "calendar": self.model.future - len(self.future_names) > 0,
        }

    def predict(
        self,
        inputs: Sequence[Series],
        future: Sequence[np.ndarray | None] | None = None,
        seed: int = 0,
    ) -> list[dict]:
        """Per series, the ``horizon`` steps after its end: {"point": (H,), "quantiles":
        {level: (H,)}}; ``future``: per series, its known-future covariates (H, Cf) over
        them (see ``trained.forecast``)."""
        future = [None] * len(inputs) if future is None else future
        if len(future) != len(inputs):
            raise ValueError(f"future: {len(future)} arrays for {len(inputs)} series")
        out = []
        for s, f in zip(inputs, future, strict=True):
            point, quant = runs.forecast(self, s, f, seed)
            levels = {f"{q:g}": quant[:, k].tolist() for k, q in enumerate(self.config.levels)}
            out.append({"point": point.tolist(), "quantiles": levels})
        return out

    def evaluate(self, data: object = None, **options: object) -> dict:
        raise ValueError("forecast models are scored by `elman backtest DIR DATA`")

    def open_stream(
        self, name: str | None = None, detector: Detector | str = "residual"
    ) -> ForecastStream:
        """A stream of series ``name`` (None: the model's one series) scored by ``detector``;
        a model that cannot read one value at a time is refused with the reason."""
        return ForecastStream(self, name, detector)

    def restore_stream(self, data: bytes) -> ForecastStream:
        return ForecastStream.from_bytes(self, data)

    def graphs(self, mode: str | None = None) -> Export:
        """The model's one graph, checked on the last window of the run's first series."""
        if mode is not None:
            ox.check_mode(mode)
        if mode == "step":
            raise ValueError(
                "mode: 'step' is for language and music models; a forecast model exports its "
                "own graphs (see elman.tasks.forecast.graphs)"
            )
        found = forecaster_graphs(self.model)
        inputs = self._real_inputs(found[0].inputs)
        return Export(found, {found[0].name: inputs} if inputs else {})

    def _real_inputs(self, names: tuple[str, ...]) -> tuple[torch.Tensor, ...] | None:
        """The graph's inputs from the last context + horizon steps of the run's first series
        (None when its data cannot be read again or is too short)."""
        series = held_out(lambda: [runs.load_source(self.info["source"])], "series")
        if not series:
            return None
        c, data = self.config, self.prepare(series[0])
        span = c.context + c.horizon
        if len(data.z) < span:
            return None
        z, past, future = (t[-span:][None] for t in (data.z, data.past, data.future))
        loc, scale = window_stats(z[:, : c.context], c.normalize)
        z, context = (z - loc) / scale, c.context
        named = {"ids": torch.tensor([data.index])}
        if c.mode == "direct":
            named |= {"z": z[:, :context], "past": past[:, :context]}
            named |= {"future_context": future[:, :context], "future_horizon": future[:, context:]}
        else:
            u, f = modelled(z[:, :context], future[:, :context], c.difference)
            named |= {"lagged": u[:, :-1], "future": f[:, 1:]}
            named |= dict(zip(("h0", "c0"), self.model.rnn.zero_state(1), strict=False))
        return tuple(named[n] for n in names)


def load(out: str | Path, which: str = "best") -> ForecastRun:
    """The forecaster in run directory ``out`` (checkpoint ``which``: best or last)."""
    model, config, meta = open_model(out, NAME, which, _model_from)
    with reading(Path(out) / f"{which}.safetensors"):
        return ForecastRun(out, which, model, meta, config)


def _model_from(info: dict) -> tuple[Forecaster, ForecastConfig]:
    config = ForecastConfig(**info["model"])
    past, future = info["sizes"]["past"], info["sizes"]["future"]
    return build_model(config, past, future, len(info["names"])), config


# `elman tune forecast`'s default space: val_loss is the head's loss in window units, so what
# changes its meaning (mode, head, horizon, context, scaling, normalize, difference) stays
# fixed; the hidden size is searched on a log scale.
# Weight decay only with AdamW (decoupled; under Adam it stays 0), min_lr only with cosine.
SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "hidden": dict(type="int", low=32, high=256, log=True),
    "layers": dict(type="int", low=1, high=3),
    "dropout": dict(type="float", low=0.0, high=0.5),
    "batch_size": dict(type="categorical", choices=[16, 32, 64]),
    **spaces.optimizer(1e-4, 1e-2),
}


SPEC = TaskSpec(
    name=NAME,
    summary="probabilistic forecaster (one or many series)",
    config=ForecastConfig,
    load=load,
    resume=runs.resume,
    command="elman.tasks.forecast.command",
    served="elman.serve.forecast:ForecastModel",
    train_defaults=MappingProxyType(
        {"steps": 2000, "lr": 1e-3, "eval_every": 200, "clip_norm": 5.0}
    ),
    space=SPACE,
    objective="val_loss",  # the only validation figure training reports (NLL or pinball)
)
ForecastRun.spec = SPEC

__all__ = ["SPEC", "ForecastRun", "load"]
