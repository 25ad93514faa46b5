"""Forecasting baselines: the naive rules exactly, the statistical models where installed."""

from __future__ import annotations

import numpy as np
import pytest

from elman.tasks.forecast import baselines as b


def test_naive_and_seasonal_naive_follow_their_rules():
    y = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    point, bounds = b.naive(y, 3)
    np.testing.assert_array_equal(point, [8, 8, 8])
    # intervals come from the in-sample h-step changes: always +h on this line
    np.testing.assert_array_equal(bounds, [[9, 9], [10, 10], [11, 11]])
    point, _ = b.seasonal_naive(y, 5, m=4)
    np.testing.assert_array_equal(point, [5, 6, 7, 8, 5])
    np.testing.assert_array_equal(b.seasonal_naive(y, 2, m=1)[0], [8, 8])
    with pytest.raises(ValueError, match="baseline must be one of"):
        b.baseline("prophet")


@pytest.mark.parametrize("name", ["ets", "arima"])
def test_statistical_baselines_forecast_a_seasonal_series(name):
    pytest.importorskip("statsmodels")
    if name == "arima":
        pytest.importorskip("pmdarima")
    t = np.arange(60)
    y = 10 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.2, 60)
    point, bounds = b.baseline(name)(y[:48], 12, 12)
    assert point.shape == (12,) and bounds.shape == (12, 2)
    assert np.abs(point - y[48:]).mean() < np.abs(b.naive(y[:48], 12)[0] - y[48:]).mean()


def test_long_seasons_use_fourier_terms_instead_of_a_seasonal_arima(monkeypatch):
    pytest.importorskip("pmdarima")
    terms = b.fourier(np.arange(4), 4, 1)
    np.testing.assert_allclose(terms, [[0, 1], [1, 0], [0, -1], [-1, 0]], atol=1e-12)
    monkeypatch.setattr(b, "MAX_SEASONAL_ARIMA", 8)  # keep the test fast: m = 12 counts as long
    monkeypatch.setattr(b, "FOURIER_ORDERS", (1, 2))
    t = np.arange(72)
    y = 5 + 2 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(1).normal(0, 0.1, 72)
    point, bounds = b.arima(y[:60], 12, 12)
    assert np.abs(point - y[60:]).mean() < 0.3  # the season is followed, not flattened
    assert (bounds[:, 0] < point).all() and (point < bounds[:, 1]).all()
