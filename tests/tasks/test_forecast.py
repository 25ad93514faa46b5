"""Forecasting: no leakage into held-out steps, a tiny model fits a noiseless sine, both
heads and both forms forecast with ordered intervals, and backtests use the documented
origins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")

from elman.data.series import load_series  # noqa: E402
from elman.tasks.forecast import trained as fr  # noqa: E402
from elman.tasks.forecast.data import ForecastConfig, ForecastTask  # noqa: E402
from elman.tasks.forecast.model import DistributionHead  # noqa: E402
from elman.tasks.forecast.run import SPEC  # noqa: E402
from elman.tasks.forecast.scores import (  # noqa: E402
    interval_scores,
    mase_scale,
    point_scores,
    seasonal_period,
)
from elman.train import TrainConfig  # noqa: E402
from tests.helpers import assert_batches_reach_model_device  # noqa: E402


def sine(n=300, freq="h", level=50.0):
    t = pd.date_range("2000-01-01", periods=n, freq=freq)
    y = np.sin(np.arange(n) * 2 * np.pi / 24) * 10 + level
    return load_series(pd.DataFrame({"t": t, "y": y}), "y", "t")


def tiny(**kw) -> ForecastConfig:
    base = dict(context=48, horizon=12, hidden=32, layers=1, samples=40, calendar=False)
    return ForecastConfig(**(base | kw))


def test_scalers_and_windows_never_see_the_held_out_steps():
    (s,) = sine()
    task = ForecastTask([s], tiny())
    (changed,) = sine()
    changed.values[-12:] = 1e6  # only the validation part differs
    other = ForecastTask([changed], tiny())
    assert task.scalers == other.scalers
    assert max(t for _, t in task.train_windows) + 12 <= len(s) - 12 - 1
    assert task.valid_windows == [(0, len(s) - 12 - 1)]


def test_a_tiny_model_fits_a_noiseless_sine(tmp_path):
    series = sine()
    config = tiny(mode="direct")
    fr.train(
        series, config, TrainConfig(steps=300, lr=5e-3, eval_every=300, progress=False), tmp_path
    )
    point, quant = fr.forecast(SPEC.load(tmp_path), series[0])
    truth = np.sin(np.arange(300, 312) * 2 * np.pi / 24) * 10 + 50
    assert np.abs(point - truth).mean() < 0.5  # amplitude 10: under 5% of it
    assert (np.diff(quant, axis=-1) >= 0).all()


@pytest.mark.parametrize(
    ("mode", "difference"), [("autoregressive", False), ("autoregressive", True), ("direct", False)]
)
@pytest.mark.parametrize("head", ["gaussian", "quantile"])
def test_every_form_forecasts_with_ordered_intervals(mode, difference, head, tmp_path):
    series = sine(160, level=5.0)
    config = tiny(mode=mode, head=head, context=24, horizon=6, calendar=True, difference=difference)
    fr.train(series, config, TrainConfig(steps=20, eval_every=10, progress=False), tmp_path)
    trained = SPEC.load(tmp_path)
    point, quant = fr.forecast(trained, series[0], seed=1)
    assert point.shape == (6,) and quant.shape == (6, 3)
    assert (np.diff(quant, axis=-1) >= -1e-9).all()
    again, _ = fr.forecast(trained, series[0], seed=1)
    np.testing.assert_array_equal(point, again)  # seeded sample paths


def test_backtest_origins_are_as_documented(tmp_path):
    series = sine(200)
    config = tiny(context=24, horizon=6)
    first = [series[0].head(150)]  # trained on steps 0..143, validated on 144..149
    fr.train(first, config, TrainConfig(steps=5, eval_every=5, progress=False), tmp_path)
    result = fr.backtest(SPEC.load(tmp_path), series, origins=3, stride=4)
    (row,) = result["series"]
    assert row["origins"] == [185, 189, 193]  # the last one ends exactly at the last value
    assert set(result["mean"]) >= {"mae", "rmse", "smape", "mase", "coverage", "pinball"}
    assert fr.training_end(SPEC.load(tmp_path), series[0]) == 143
    # origins 143, 149, ..., 191: 9 fit past the training end, 50 do not
    assert (
        fr.backtest(SPEC.load(tmp_path), series, origins=9, stride=6)["series"][0]["origins"][0]
        == 145
    )
    with pytest.raises(ValueError, match=r"50 origin\(s\) 6 apart do not fit, only 9: .* row 144"):
        fr.backtest(SPEC.load(tmp_path), series, origins=50, stride=6)
    with pytest.raises(ValueError, match="origins must be an integer >= 1, got 0"):
        fr.backtest(SPEC.load(tmp_path), series, origins=0)
    with pytest.raises(ValueError, match="stride must be an integer >= 1, got 0"):
        fr.backtest(SPEC.load(tmp_path), series, origins=1, stride=0)


def test_bad_configs_and_inputs(tmp_path):
    with pytest.raises(ValueError, match="levels must ascend"):
        ForecastConfig(levels=(0.9, 0.1))
    with pytest.raises(ValueError, match=r"include 0\.5"):
        ForecastConfig(levels=(0.1, 0.9))
    with pytest.raises(ValueError, match="needs the autoregressive mode"):
        ForecastConfig(mode="direct", difference=True)
    with pytest.raises(ValueError, match="past covariates are unknown beyond"):
        from elman.tasks.forecast.model import Forecaster

        Forecaster("autoregressive", 4, past=2)
    with pytest.raises(ValueError, match=r"has 50 rows; .* = 48 \+ 12 \+ 12 = 72: lower --context"):
        ForecastTask(sine(50), tiny())


def test_heads_losses_and_quantiles():
    g = DistributionHead(4, "gaussian", (0.1, 0.5, 0.9))
    theta = torch.tensor([[0.0, 1.0]])
    q = g.quantiles(theta, (0.1, 0.5, 0.9))
    torch.testing.assert_close(q, torch.tensor([[-1.2816, 0.0, 1.2816]]), atol=1e-4, rtol=0)
    nll = g.loss(theta, torch.tensor([0.0]))
    assert abs(float(nll) - 0.5 * np.log(2 * np.pi)) < 1e-6
    qh = DistributionHead(4, "quantile", (0.1, 0.5, 0.9))
    levels = torch.tensor([[-1.0, 0.0, 2.0]])
    assert float(qh.loss(levels, torch.tensor([0.0]))) == pytest.approx(0.1 * 1 + 0 + 0.1 * 2)
    draws = qh.sample(levels.expand(2000, 3), torch.Generator().manual_seed(0))
    assert float(draws.min()) >= -1.0 and float(draws.max()) <= 2.0


def test_scores():
    assert seasonal_period("MS") == 12 and seasonal_period("W-SUN") == 52
    assert seasonal_period("30min") == 48 and seasonal_period("YS-JAN") == 1
    train = np.array([1.0, 2, 3, 4, 5])
    assert mase_scale(train, 1) == 1.0 and np.isnan(mase_scale(np.ones(5), 1))
    s = point_scores(np.array([1.0, 2.0]), np.array([2.0, 2.0]), 1.0)
    assert s["mae"] == 0.5 and s["mase"] == 0.5 and s["smape"] == pytest.approx(100 / 3 / 2 * 2)
    i = interval_scores(
        np.array([0.0, 5.0]), np.array([[-1, 0, 1], [-1, 0, 1]]), (0.1, 0.5, 0.9), 1
    )
    assert i["coverage"] == 0.5 and i["interval"] == pytest.approx(0.8)


@pytest.mark.parametrize("mode", ["autoregressive", "direct"])
def test_backtests_and_forecasts_hand_the_model_its_batches_on_its_device(
    monkeypatch, tmp_path, mode
):
    series = sine(160, level=5.0)
    config = tiny(mode=mode, context=24, horizon=6, calendar=True, samples=4)
    fr.train(series, config, TrainConfig(steps=2, eval_every=2, progress=False), tmp_path)
    run = SPEC.load(tmp_path)
    assert_batches_reach_model_device(monkeypatch, run.model, lambda: fr.backtest(run, series, 1))
    assert_batches_reach_model_device(monkeypatch, run.model, lambda: run.predict(series))
    task = ForecastTask(series, config)  # the trainer's validation pass
    assert_batches_reach_model_device(monkeypatch, task.model, lambda: task.evaluate(task.model))


def test_a_run_answers_the_shared_interface(tmp_path):
    from elman.tasks.registry import load_run

    series = sine(160, level=5.0)
    config = tiny(mode="direct", context=24, horizon=6)
    fr.train(series, config, TrainConfig(steps=2, eval_every=2, progress=False), tmp_path)
    run = load_run(tmp_path)
    assert run.task == "forecast" and run.spec is SPEC and run.which == "best"
    (row,) = run.predict(series)
    point, quant = fr.forecast(run, series[0])
    assert row == {
        "point": point.tolist(),
        "quantiles": {
            "0.1": quant[:, 0].tolist(),
            "0.5": quant[:, 1].tolist(),
            "0.9": quant[:, 2].tolist(),
        },
    }
    info = run.describe()
    assert info["task"] == "forecast" and info["step"] is None  # as /models always showed it
    assert info["mode"] == "direct" and info["horizon"] == 6 and info["series"] == ["y"]
    with pytest.raises(ValueError, match=r"^forecast models are scored by `elman backtest DIR"):
        run.evaluate()
    with pytest.raises(ValueError, match="a 'direct'-mode forecaster emits its whole horizon"):
        run.open_stream()
    with pytest.raises(ValueError, match="'step' is for language and music models"):
        run.graphs("step")
    with pytest.warns(UserWarning, match="no real-data check: the run's series cannot be read"):
        export = run.graphs()  # its data was given in Python: random inputs only
    assert [g.name for g in export.graphs] == ["model-sequence"] and export.mode is None
    assert export.real == {} and export.graphs[0].inputs == ("z",)
