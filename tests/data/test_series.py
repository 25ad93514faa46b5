"""Loading series onto a regular grid, missing values, scaling and windows: each documented
rule holds, and bad input is named."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from elman.data.scaling import Scaler  # noqa: E402
from elman.data.series import load_series  # noqa: E402
from elman.data.windows import calendar_features, window_origins, windows  # noqa: E402


def frame(n=10, freq="D", **extra):
    time = pd.date_range("2024-01-01", periods=n, freq=freq)
    return pd.DataFrame({"date": time, "sales": np.arange(n, dtype=float), **extra})


def test_csv_and_parquet_round_trip(tmp_path):
    df = frame(price=np.linspace(1, 2, 10))
    df.to_csv(tmp_path / "d.csv", index=False)
    (s,) = load_series(tmp_path / "d.csv", "sales", "date", past=["price"])
    assert s.freq == "D" and len(s) == 10 and s.past.shape == (10, 1)
    np.testing.assert_array_equal(s.values, np.arange(10.0))
    pytest.importorskip("pyarrow")
    df.to_parquet(tmp_path / "d.parquet")
    (p,) = load_series(tmp_path / "d.parquet", "sales", "date")
    np.testing.assert_array_equal(p.values, s.values)


def test_unsorted_is_sorted_and_duplicates_are_named():
    df = frame().iloc[::-1]
    (s,) = load_series(df, "sales", "date")
    np.testing.assert_array_equal(s.values, np.arange(10.0))
    assert "sorted" in s.notes[0]
    dup = pd.concat([frame(), frame().iloc[[3]]])
    with pytest.raises(ValueError, match="duplicate timestamp 2024-01-04"):
        load_series(dup, "sales", "date")


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("interpolate", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ("ffill", [0, 1, 2, 2, 2, 5, 6, 7, 8, 9]),
        ("zero", [0, 1, 2, 0, 0, 5, 6, 7, 8, 9]),
    ],
)
def test_gaps_become_missing_steps_filled_by_the_policy(missing, expected):
    df = frame().drop(index=[3, 4])  # two days missing
    (s,) = load_series(df, "sales", "date", missing=missing)
    assert s.freq == "D" and len(s) == 10
    np.testing.assert_allclose(s.values, expected)
    assert any("2 missing step(s)" in n for n in s.notes)
    with pytest.raises(ValueError, match="2 missing value"):
        load_series(df, "sales", "date", missing="error")


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="column 'sales' holds a non-number, 'n/a'"):
        load_series(frame().astype({"sales": object}).replace({4.0: "n/a"}), "sales", "date")
    with pytest.raises(ValueError, match="infinite"):
        load_series(frame().replace({4.0: np.inf}), "sales", "date")
    with pytest.raises(ValueError, match=r"column\(s\) \['price'\] not in the data"):
        load_series(frame(), "sales", "date", past=["price"])
    with pytest.raises(ValueError, match="missing must be one of"):
        load_series(frame(), "sales", "date", missing="drop")
    odd = frame().assign(date=lambda d: d["date"] + pd.to_timedelta([0] * 9 + [5], unit="h"))
    with pytest.raises(ValueError, match="do not lie on a 'D' grid"):
        load_series(odd, "sales", "date", freq="D")


def test_many_series_by_id_and_by_column():
    a, b = frame(), frame().assign(sales=lambda d: d["sales"] * 2)
    long = pd.concat([a.assign(shop="a"), b.assign(shop="b")])
    named = load_series(long, "sales", "date", id_col="shop")
    assert [s.name for s in named] == ["a", "b"] and named[1].values[3] == 6
    wide = frame(visits=np.ones(10))
    assert [s.name for s in load_series(wide, None, "date")] == ["sales", "visits"]


@pytest.mark.parametrize("kind", ["standard", "minmax", "robust", "none"])
def test_scaling_round_trips_and_is_fitted_on_what_it_is_given(kind):
    rng = np.random.default_rng(0)
    train, test = rng.normal(5, 2, 100), rng.normal(50, 2, 20)
    scaler = Scaler.fit(train, kind)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(test)), test)
    assert Scaler.from_json(scaler.to_json()) == scaler
    if kind == "standard":  # the test data (mean 50) never moved it
        assert abs(scaler.loc - 5) < 1 and abs(scaler.transform(train).std() - 1) < 1e-9
    assert Scaler.fit(np.full(5, 3.0), kind).scale == 1.0  # constant: no division by zero


def test_windows_stay_inside_the_series_and_before_the_cut():
    x = np.arange(20.0)
    origins = window_origins(20, context=5, horizon=3)
    assert origins[0] == 4 and origins[-1] == 16
    ctx, tgt = windows(x, origins, 5, 3)
    np.testing.assert_array_equal(ctx[0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(tgt[-1], [17, 18, 19])
    cut = window_origins(20, 5, 3, last=14)  # targets never reach past step 14
    assert cut[-1] + 3 <= 14
    assert list(window_origins(20, 5, 3, stride=4)) == [4, 8, 12, 16]
    with pytest.raises(ValueError, match=r"20 usable steps, fewer than .* = 18 \+ 3 = 21"):
        window_origins(20, 18, 3)


def test_calendar_features_follow_the_frequency():
    hourly = pd.date_range("2024-01-01", periods=48, freq="h").to_numpy()
    assert calendar_features(hourly, "h").shape == (48, 8)
    monthly = pd.date_range("2024-01-01", periods=24, freq="MS").to_numpy()
    f = calendar_features(monthly, "MS")
    assert f.shape == (24, 2)
    np.testing.assert_allclose(f[0], f[12])  # same month a year apart
    assert calendar_features(np.arange(10), None).shape == (10, 0)


def test_a_freq_that_is_not_one_or_that_integer_steps_ignore_is_refused():
    with pytest.raises(ValueError, match="freq 'XYZ' is not a pandas frequency"):
        load_series(frame(), "sales", "date", freq="XYZ")
    steps = pd.DataFrame({"sales": range(10)})  # no time column: integer steps
    with pytest.raises(ValueError, match="integer time steps, not dates"):
        load_series(steps, "sales", freq="D")
