"""Forecast streams: next-step forecasts equal one whole-series pass of step_parameters, the
state survives bytes mid-series, and series stepped together equal series stepped alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from elman.data.scaling import Scaler
from elman.tasks.forecast.anomaly import Detector, surprise
from elman.tasks.forecast.data import ForecastConfig, build_model, modelled
from elman.tasks.forecast.run import ForecastRun
from elman.tasks.forecast.stream import ForecastStream, NextSteps
from elman.tasks.streams import feed_together

NAMES = ["a", "b"]


def _trained(difference: bool = False, head: str = "gaussian", cell: str = "lstm", **kw):
    """An untrained two-series forecaster (random weights stream as well as trained ones)."""
    config = ForecastConfig(
        context=8,
        horizon=2,
        cell=cell,
        hidden=6,
        layers=2,
        dropout=0.0,
        head=head,
        levels=(0.1, 0.5, 0.9),
        calendar=False,
        normalize=False,
        difference=difference,
        id_embedding=3,
        **kw,
    )
    torch.manual_seed(0)
    model = build_model(config, 0, 0, len(NAMES)).eval()
    scalers = [
        {"target": Scaler("standard", loc, scale).to_json(), "covariates": []}
        for loc, scale in ((2.0, 3.0), (-1.0, 0.5))
    ]
    info = {"scalers": scalers, "names": NAMES, "source": {}, "sizes": {"past": 0, "future": 0}}
    return _run(model, config, info)


def _run(model, config: ForecastConfig, info: dict) -> ForecastRun:
    """A run of ``model`` that was never saved (its header holds only ``info``)."""
    return ForecastRun("unsaved", "best", model, {"task_config": info}, config)


def _values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sin(np.arange(n) / 3) * 2 + rng.normal(0, 0.3, n) + 1.0


@torch.no_grad()
def _whole(trained: ForecastRun, index: int, values: np.ndarray):
    """Point (T,), quantiles (T, L) and scores (T,) from one pass over the whole series."""
    c, head = trained.config, trained.model.head
    scaler = trained.target_scaler(index)
    z = torch.tensor(scaler.transform(values), dtype=torch.float32)[None]
    u, _ = modelled(z, torch.zeros(1, z.shape[1], 0), c.difference)
    nothing = torch.zeros(1, u.shape[1], 0)
    theta, _ = trained.model.step_parameters(u, nothing, torch.tensor([index]))
    theta = theta[0]  # (T', P): after reading u_0..u_j, the parameters of u_{j+1}
    base = z[0, 1:, None] if c.difference else torch.zeros(1, 1)  # the last level
    point = (head.point(theta)[:, None] + base)[:, 0]
    quant = head.quantiles(theta, c.levels) + base
    lead = np.full((int(c.difference),), np.nan)
    point = np.concatenate([lead, scaler.inverse(point.double().numpy())])
    quant = np.concatenate([np.full((int(c.difference), 3), np.nan), scaler.inverse(quant.numpy())])
    score = surprise(trained, theta[:-1], u[0, 1:], "residual").double().numpy()
    return point, quant, np.concatenate([np.zeros(1 + int(c.difference)), score])


def _joined(parts: list[NextSteps]) -> tuple[np.ndarray, ...]:
    return tuple(
        np.concatenate([getattr(p, k) for p in parts]) for k in ("point", "quantiles", "score")
    )


@pytest.mark.parametrize("difference", [False, True])
@pytest.mark.parametrize(("head", "cell"), [("gaussian", "lstm"), ("quantile", "gru")])
def test_stream_equals_one_pass_over_the_series_and_survives_bytes(difference, head, cell):
    trained = _trained(difference, head, cell)
    values = _values(20, 0)
    want = _whole(trained, 1, values)
    stream = ForecastStream(trained, "b")
    parts = [stream.feed(values[0]), stream.feed(values[1:5]), stream.feed(values[5:12])]
    data = stream.to_bytes()
    again = ForecastStream.from_bytes(trained, data)
    assert again.steps == 12 and again.index == 1
    parts.append(again.feed(values[12:]))
    got = _joined(parts)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    lone = ForecastStream.from_bytes(trained, data).feed(values[12:])
    np.testing.assert_array_equal(lone.point, parts[-1].point)
    assert parts[0].levels == (0.1, 0.5, 0.9) and not parts[-1].flagged.any()
    lo, mid, hi = got[1][3:].T
    assert (lo < mid).all() and (mid < hi).all()
    if head == "gaussian":  # the point forecast is the mean, the median of a Gaussian
        np.testing.assert_allclose(mid, got[0][3:], rtol=1e-5, atol=1e-5)


def test_series_stepped_together_equal_series_stepped_alone():
    trained = _trained(difference=True)
    detector = Detector(threshold=1.5, adapt=0.05, smooth=2)  # sequential: flags feed back
    values = [_values(14, seed) for seed in range(3)]
    values[1][9] += 8.0  # a spike, flagged and replaced
    history = [(0, "a"), (5, "b"), (9, "a")]
    together = [ForecastStream(trained, name, detector) for _, name in history]
    alone = [ForecastStream(trained, name, detector) for _, name in history]
    for s, t, (n, _), v in zip(together, alone, history, values, strict=True):
        if n:
            s.feed(v[:n])
            t.feed(v[:n])
    chunks = [v[n : n + 5] for (n, _), v in zip(history, values, strict=True)]
    got = feed_together(together, chunks)
    for g, t, x in zip(got, alone, chunks, strict=True):
        w = t.feed(x)
        for key in ("point", "quantiles", "score"):
            np.testing.assert_allclose(getattr(g, key), getattr(w, key), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(g.flagged, w.flagged)
    assert got[1].flagged.any()
    for s, t in zip(together, alone, strict=True):
        torch.testing.assert_close(s.reader.state, t.reader.state)
    with pytest.raises(ValueError, match="one length"):
        feed_together(together[:2], [[1.0], [1.0, 2.0]])


def test_forecasters_that_cannot_stream_are_refused():
    trained = _trained()
    direct = _trained(mode="direct")
    with pytest.raises(ValueError, match="cannot stream step by step"):
        ForecastStream(direct, "a")
    normalized = _run(trained.model, replace(trained.config, normalize=True), trained.info)
    with pytest.raises(ValueError, match=r"normalize=True.*elman train forecast --streamable"):
        ForecastStream(normalized, "a")
    info = trained.info | {"sizes": {"past": 0, "future": 2}}
    with pytest.raises(ValueError, match="known-future covariates"):
        _run(trained.model, trained.config, info).open_stream("a")
    with pytest.raises(ValueError, match="name one of"):
        ForecastStream(trained)
    with pytest.raises(ValueError, match="finite"):
        ForecastStream(trained, "a").feed([1.0, float("nan")])
    with pytest.raises(ValueError, match="not the state of a forecast stream"):
        ForecastStream.from_bytes(trained, b"junk")
    data = ForecastStream(_trained(cell="gru"), "a").to_bytes()
    stream = ForecastStream(_trained(cell="gru"), "a")
    stream.feed([1.0, 2.0])
    with pytest.raises(ValueError, match=r"rnn\.1: missing"):
        ForecastStream.from_bytes(trained, stream.to_bytes())  # a GRU's state for an LSTM
    assert ForecastStream.from_bytes(trained, data).steps == 0
