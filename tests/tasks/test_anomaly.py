"""Anomaly scores: streaming equals batch, thresholds come from training data only, and the
detection metrics follow their definitions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from elman.data.series import load_series  # noqa: E402
from elman.tasks.forecast import anomaly  # noqa: E402
from elman.tasks.forecast import trained as fr  # noqa: E402
from elman.tasks.forecast.data import ForecastConfig  # noqa: E402
from elman.tasks.forecast.run import SPEC, ForecastRun  # noqa: E402
from elman.tasks.forecast.stream import ForecastStream  # noqa: E402
from elman.train import TrainConfig  # noqa: E402
from tests.helpers import assert_batches_reach_model_device  # noqa: E402


def fit(out, difference: bool = False):
    rng = np.random.default_rng(0)
    y = np.sin(np.arange(300) / 4) + rng.normal(0, 0.05, 300) + np.arange(300) * 0.01
    series = load_series(pd.DataFrame({"y": y}), "y")
    config = ForecastConfig(
        context=24,
        horizon=4,
        hidden=16,
        layers=1,
        calendar=False,
        normalize=False,
        difference=difference,
    )
    fr.train(series, config, TrainConfig(steps=150, lr=5e-3, eval_every=150, progress=False), out)
    return SPEC.load(out), series[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return fit(tmp_path_factory.mktemp("anomaly"))


@pytest.mark.parametrize("difference", [False, True])
@pytest.mark.parametrize("score", ["residual", "nll"])
def test_streaming_equals_batch_scoring(tmp_path_factory, score, difference):
    model, s = fit(tmp_path_factory.mktemp("stream"), difference)
    batch = anomaly.scores(model, s, score)
    assert (batch[: 1 + difference] == 0).all()
    plain = anomaly.Detector(score, 3.0, replace=False)  # the one-pass batch form
    stream = ForecastStream(model, s.name, plain)
    one_by_one = [float(stream.feed(v).score[0]) for v in s.values[:80]]
    np.testing.assert_allclose(one_by_one, batch[:80], rtol=1e-4, atol=1e-5)
    smooth = anomaly.Detector(score, 3.0, replace=False, smooth=4)  # one pass, then averaged
    smoothed = anomaly.scores(model, s, smooth)
    stream = ForecastStream(model, s.name, smooth)
    np.testing.assert_allclose(
        [float(stream.feed(v).score[0]) for v in s.values[:80]], smoothed[:80], 1e-4, 1e-5
    )
    assert smoothed[1 + difference :].std() < batch[1 + difference :].std()
    spiked = s.values.copy()
    spiked[[40, 60]] += 2.0
    adapt = 0.05 if score == "residual" else 0.0
    robust = anomaly.Detector(score, threshold=3.0, adapt=adapt, smooth=3)
    batch = anomaly.scores(model, load_series(pd.DataFrame({"y": spiked}), "y")[0], robust)
    stream = ForecastStream(model, s.name, robust)
    one_by_one = [float(stream.feed(v).score[0]) for v in spiked[:80]]
    np.testing.assert_allclose(one_by_one, batch[:80], rtol=1e-4, atol=1e-5)
    first = ForecastStream(model, s.name, robust)  # stopped at 45, restored, continued
    head = [float(first.feed(v).score[0]) for v in spiked[:45]]
    again = ForecastStream.from_bytes(model, first.to_bytes())
    np.testing.assert_array_equal(head + again.feed(spiked[45:80]).score.tolist(), one_by_one)


def test_replacing_flagged_values_silences_the_echo_of_a_spike(tmp_path):
    model, s = fit(tmp_path, difference=True)
    spiked = s.values.copy()
    spiked[250] += 3.0
    (series,) = load_series(pd.DataFrame({"y": spiked}), "y")
    threshold = anomaly.fit_threshold(model, [s.head(200)], 0.99)
    echo = anomaly.scores(model, series, anomaly.Detector(threshold=threshold, replace=False))
    clean = anomaly.scores(model, series, anomaly.Detector(threshold=threshold))
    assert echo[250] > threshold and clean[250] > threshold  # the spike is found either way
    assert echo[251] > threshold  # the return from the spike is a jump of differences too
    assert clean[251] < echo[251] / 10  # the model never read the spike
    assert (clean[251:256] > threshold).sum() < (echo[251:256] > threshold).sum()


def test_adaptive_scale_follows_growing_noise_but_not_spikes(tmp_path):
    model, s = fit(tmp_path)
    rng = np.random.default_rng(1)
    noisy = s.values + np.r_[np.zeros(200), rng.normal(0, 0.4, 100)]  # noise grows 8-fold
    noisy[280] += 4.0
    (series,) = load_series(pd.DataFrame({"y": noisy}), "y")
    threshold = anomaly.fit_threshold(model, [s.head(200)], 0.99, anomaly.Detector(adapt=0.05))
    fixed = anomaly.scores(model, series, anomaly.Detector(threshold=threshold))
    adaptive = anomaly.scores(model, series, anomaly.Detector(threshold=threshold, adapt=0.05))
    assert (fixed[200:] > threshold).sum() > 20  # the fixed scale flags the new noise
    assert (adaptive[230:] > threshold).sum() < (fixed[230:] > threshold).sum() / 4
    assert adaptive[280] == adaptive[230:].max()  # while the spike still stands out


def test_a_spike_scores_far_above_the_training_threshold(trained):
    model, s = trained
    train_part = load_series(pd.DataFrame({"y": s.values[:200]}), "y")
    threshold = anomaly.fit_threshold(model, train_part, 0.99)
    spiked = s.values.copy()
    spiked[250] += 3.0
    scores = anomaly.scores(model, load_series(pd.DataFrame({"y": spiked}), "y")[0])
    assert scores[250] > threshold and scores[250] == scores.max()


def test_detection_metrics():
    labels = np.array([0, 1, 1, 1, 0, 0, 1, 0])
    flags = np.array([0, 0, 1, 0, 0, 1, 0, 0])
    m = anomaly.detection_scores(labels, flags, flags.astype(float))
    assert m["point_precision"] == 0.5 and m["point_recall"] == 0.25
    assert m["adjusted_recall"] == 0.75 and m["adjusted_precision"] == 0.75
    assert anomaly.average_precision(
        np.array([1, 0, 1]), np.array([0.9, 0.8, 0.1])
    ) == pytest.approx((1 + 2 / 3) / 2)


def test_refusals(trained, tmp_path):
    model, _ = trained
    normalized = ForecastRun(
        model.path, model.which, model.model, model.meta, replace(model.config, normalize=True)
    )
    with pytest.raises(
        ValueError, match=r"normalize=True\): train it with `elman train forecast --streamable`"
    ):
        anomaly.scores(normalized, trained[1])
    with pytest.raises(ValueError, match="score must be one of"):
        anomaly.scores(model, trained[1], "zscore")
    with pytest.raises(ValueError, match="adapt rescales residuals"):
        anomaly.Detector("nll", adapt=0.1)
    with pytest.raises(ValueError, match="adapt must be in"):
        anomaly.Detector(adapt=1.5)
    with pytest.raises(ValueError, match="smooth must be an integer span >= 1, got 0"):
        anomaly.Detector(smooth=0)
    with pytest.raises(ValueError, match="at least 10"):
        anomaly.threshold_of(np.arange(50.0), "pot", 0.9, 1e-3)
    tail = np.random.default_rng(0).exponential(size=20000)
    assert anomaly.threshold_of(tail, "pot", 0.95, 1e-3) == pytest.approx(np.log(1e3), rel=0.05)
    with pytest.raises(ValueError, match="finite"):
        ForecastStream(model, "y", anomaly.Detector(threshold=1.0)).feed(float("nan"))
    with pytest.raises(ValueError, match="data: not the state of a forecast stream"):
        model.restore_stream(b"junk")


def test_batch_scores_hand_the_model_its_series_on_its_device(monkeypatch, trained):
    model, s = trained
    plain = anomaly.Detector(replace=False)  # the one-pass batch form
    assert_batches_reach_model_device(
        monkeypatch, model.model, lambda: anomaly.scores(model, s, plain)
    )
