"""Forecasters: a forecast of the horizon after a posted series, and (autoregressive
models) sessions that read one value at a time."""

from __future__ import annotations

import math

import numpy as np

from elman.data.scaling import Scaler
from elman.data.series import Series
from elman.data.windows import calendar_features
from elman.serve.config import Limits
from elman.serve.served import Chunk, RequestError, Served, check_steps
from elman.tasks.forecast import anomaly
from elman.tasks.forecast.anomaly import Detector
from elman.tasks.forecast.run import ForecastRun
from elman.tasks.forecast.stream import ForecastStream, check_streamable

FIT_QUANTILE = 0.99  # of the training data's scores: a session's threshold "fit"


def check_scaled(field: str, values: np.ndarray, scaler: Scaler) -> None:
    """Values the model can read: scaled as its training data was, each still a float32
    number (1e308 is finite, but not once scaled and cast); the error names the value."""
    try:
        scaler.scaled(values, field)
    except ValueError as e:
        raise RequestError(str(e)) from None


class ForecastModel(Served):
    endpoints = ("forecast",)

    def __init__(self, name: str, run: ForecastRun) -> None:
        super().__init__(name, run)
        self.calendar = run.model.future - len(run.future_names)
        self.fitted: float | None = None
        try:
            check_streamable(run, Detector())
            self.takes, self.endpoints = "values", ("forecast", "sessions")
        except ValueError as e:  # direct mode, per-window normalization, covariates
            self.why = str(e)

    def series(self, body, limits: Limits) -> Series:
        """The posted values as a series like the training data (checked)."""
        values = np.asarray(body.values, dtype=np.float64)
        check_steps("values", len(values), limits)
        context = self.run.config.context
        if len(values) < context:
            raise RequestError(
                f"values: the model needs {context} values of context, got {len(values)}"
            )
        if self.run.future_names:
            raise RequestError(
                f"this model reads known-future covariates {self.run.future_names}; "
                "forecast it with `elman forecast DIR DATA --future FILE` instead"
            )
        try:
            index = self.run.lookup(body.series)
        except ValueError as e:
            raise RequestError(f"series: {e}") from None
        check_scaled("values", values, self.run.target_scaler(index))
        time = self._time(body, len(values))
        empty = np.zeros((len(values), 0))
        return Series(body.series, time, values, empty, empty, body.freq)

    def _time(self, body, count: int) -> np.ndarray:
        if not self.calendar:
            return np.arange(count)
        if body.start is None or body.freq is None:
            raise RequestError(
                "start, freq: this model reads calendar features; give the first value's time "
                "(ISO, e.g. 2024-01-01) and the grid's pandas frequency (e.g. D, h, MS)"
            )
        import pandas as pd

        try:
            time = pd.date_range(body.start, periods=count, freq=body.freq).to_numpy()
        except (ValueError, TypeError) as e:
            raise RequestError(f"start, freq: {e}") from None
        found = calendar_features(time[:1], body.freq).shape[1]
        if found != self.calendar:
            raise RequestError(
                f"freq: {body.freq!r} gives {found} calendar features; the model was trained "
                f"with {self.calendar} (use the training data's frequency)"
            )
        return time

    # ---- sessions: one value at a time -> the next value's forecast, this one's score ------
    def session_options(self, options: dict) -> dict:
        self.check_streams()
        unknown = set(options) - {"series", "threshold"}
        if unknown:
            raise RequestError(f"options: unknown {sorted(unknown)}; expected series, threshold")
        series, threshold = options.get("series"), options.get("threshold")
        if series is not None and not isinstance(series, str):
            raise RequestError(f"options.series: expected a series name, got {series!r}")
        if threshold == "fit":
            threshold = self.fitted_threshold()
        number = isinstance(threshold, int | float) and not isinstance(threshold, bool)
        if threshold is not None and not (number and math.isfinite(threshold)):
            raise RequestError(
                f"options.threshold: expected a finite number or 'fit', got {threshold!r}"
            )
        options = {"series": series, "threshold": None if threshold is None else float(threshold)}
        self.open(options)  # a series the model does not know fails here
        return options

    def fitted_threshold(self) -> float:
        """The 0.99 quantile of the scores of the run's own training data (as ``elman detect``
        fits it), computed once; sessions store the number, so a restart need not refit."""
        if self.fitted is None:
            try:
                training = self.run.training_series()
            except (OSError, ValueError) as e:
                raise RequestError(
                    f"options.threshold: 'fit' scores the run's training data, which could not "
                    f"be read ({e}); give the threshold as a number"
                ) from None
            self.fitted = anomaly.fit_threshold(self.run, training, FIT_QUANTILE)
        return self.fitted

    def open(self, options: dict) -> ForecastStream:
        try:
            detector = Detector(threshold=options["threshold"])
            return self.run.open_stream(options["series"], detector)
        except ValueError as e:
            raise RequestError(f"options: {e}") from None

    def restore(self, options: dict, data: bytes) -> ForecastStream:
        return self.run.restore_stream(data)

    def parse(self, stream: ForecastStream, inputs, limits: Limits) -> Chunk:
        check_steps("values", len(inputs), limits)
        values = [float(v) for v in inputs]
        check_scaled("values", np.asarray(values), stream.scaler)
        return Chunk(values, ("values", len(inputs)))

    def step(self, streams: list, chunks: list, options: list[dict]) -> list[dict]:
        levels = [f"{q:g}" for q in self.run.config.levels]
        replies = []
        for out in ForecastStream.feed_together(streams, chunks):
            rows = []
            for t, point in enumerate(out.point.tolist()):
                quant = dict(zip(levels, out.quantiles[t].tolist(), strict=True))
                nxt = None if np.isnan(point) else {"point": point, "quantiles": quant}
                score, flagged = float(out.score[t]), bool(out.flagged[t])
                rows.append({"score": score, "flagged": flagged, "next": nxt})
            replies.append({"outputs": rows})
        return replies

    # ---- stateless ----------------------------------------------------------------------
    def parse_request(self, endpoint: str, body, limits: Limits) -> Series:
        return self.series(body, limits)

    def answer(self, endpoint: str, jobs: list[Series]) -> list[dict]:
        return self.run.predict(jobs)


__all__ = ["ForecastModel"]
