"""Bad input to the forecasting commands (train forecast, forecast, backtest, detect, resume)
ends in one `elman: error:` line that names the option, the value and what was expected,
exit code 2, and no file touched; and the defaults do not mislead (backtests out of sample,
every series plotted, one switch for models that detection and streams can read)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from elman.cli import main
from elman.train import checkpoint as ckpt
from tests.helpers import refused

pd = pytest.importorskip("pandas")
TINY = ["--context", "12", "--horizon", "4", "--hidden", "8", "--layers", "1", "--samples", "10"]
RUN = ["--steps", "4", "--eval-every", "2", "--no-progress"]
DAYS = 80


def _frame(days: int = DAYS, shops=("a", "b")) -> pd.DataFrame:
    t = pd.date_range("2020-01-01", periods=days, freq="D")
    rng = np.random.default_rng(0)
    return pd.concat(
        pd.DataFrame(
            {"day": t, "shop": k, "sales": 10 + np.sin(np.arange(days)) + rng.normal(0, 0.1, days)}
        )
        for k in shops
    )


def _train(data, out, *extra) -> None:
    args = ["train", "forecast", str(data), "--time-col", "day", "--target", "sales"]
    assert main([*args, "--id-col", "shop", "--out", str(out), *TINY, *RUN, *extra]) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A default model of two shops trained on the first 60 days, a --streamable one of one
    shop (with labels beside its data), and the files they read."""
    root = tmp_path_factory.mktemp("series")
    full = _frame()
    full.to_csv(root / "all.csv", index=False)
    full[full["day"] < pd.Timestamp("2020-03-01")].to_csv(root / "first.csv", index=False)
    _train(root / "first.csv", root / "model")
    one = _frame(shops=("a",)).assign(label=0)
    one.to_csv(root / "one.csv", index=False)
    _train(root / "one.csv", root / "stream", "--streamable")
    return root


# ---- 1. backtest counts -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"), [("--origins", "0"), ("--origins", "-1"), ("--stride", "0")]
)
def test_backtest_refuses_counts_below_one(runs, capsys, option, value):
    argv = ["backtest", str(runs / "model"), str(runs / "all.csv"), option, value]
    refused(capsys, argv, f"{option} must be >= 1, got {value}")


# ---- 2. detect's output and label column --------------------------------------------------
def test_detect_refuses_a_directory_for_metrics_and_an_unknown_label_column(runs, capsys):
    cmd = ["detect", str(runs / "stream"), str(runs / "one.csv")]
    err = refused(capsys, [*cmd, "--label-col", "nope"], "--label-col 'nope'", "'sales'", "'label'")
    assert "no such column" in err
    refused(capsys, [*cmd, "--label-col", "label", "--metrics", str(runs)], "is a directory")
    refused(capsys, [*cmd, "--metrics", str(runs / "m.json")], "--metrics", "--label-col")
    refused(capsys, [*cmd, "--label-col", "sales"], "expected 0/1 labels")
    assert not (runs / "m.json").exists()


# ---- 3. zero is not "the default" ----------------------------------------------------------
def test_zero_horizon_and_validation_steps_are_refused(runs, capsys, tmp_path):
    refused(capsys, ["forecast", str(runs / "model"), "--horizon", "0"], "--horizon must be >= 1")
    args = ["train", "forecast", str(runs / "one.csv"), "--time-col", "day", "--target", "sales"]
    out = tmp_path / "run"
    refused(capsys, [*args, "--valid-steps", "0", "--out", str(out), *TINY, *RUN], "--valid-steps")
    assert not (out / "last.safetensors").exists()


# ---- 4. values whose scaling overflows -----------------------------------------------------
def test_huge_values_are_refused_in_training_and_at_inference(runs, capsys, tmp_path):
    huge = _frame(shops=("a",))
    huge.loc[10, "sales"] = 1e308
    huge.to_csv(tmp_path / "huge.csv", index=False)
    args = ["train", "forecast", str(tmp_path / "huge.csv"), "--time-col", "day"]
    out = tmp_path / "run"
    refused(
        capsys,
        [*args, "--target", "sales", "--out", str(out), *TINY, *RUN],
        "series 'sales' target",
        "1e+308",
        "overflows",
    )
    assert not out.exists()
    argv = [*args, "--target", "sales", "--scaling", "none", "--out", str(out), *TINY, *RUN]
    refused(capsys, argv, "series 'sales' target at 2020-01-11: 1e+308 is out of range")
    covariate = _frame(shops=("a",)).assign(promo=1.0)
    covariate.loc[3, "promo"] = 1e308
    covariate.to_csv(tmp_path / "promo.csv", index=False)
    argv = ["train", "forecast", str(tmp_path / "promo.csv"), "--time-col", "day"]
    argv += ["--target", "sales", "--future-covariates", "promo", "--out", str(out), *TINY, *RUN]
    refused(capsys, argv, "series 'sales' covariate 'promo'", "1e+308")
    assert not out.exists()
    late = _frame()
    late.loc[late.index[-1], "sales"] = 1e308  # the last day of each shop: after training
    late.to_csv(tmp_path / "late.csv", index=False)
    for command in ("forecast", "backtest"):
        argv = [command, str(runs / "model"), str(tmp_path / "late.csv")]
        refused(capsys, argv, "series 'a' target at 2020-03-20", "1e+308", "out of range")
    one = _frame(shops=("a",)).assign(label=0)
    one.loc[50, "sales"] = -1e308
    one.to_csv(tmp_path / "one.csv", index=False)
    refused(capsys, ["detect", str(runs / "stream"), str(tmp_path / "one.csv")], "-1e+308")


def test_a_stream_refuses_huge_values_and_stays_as_it_was(runs):
    from elman.tasks.registry import load_run

    stream = load_run(runs / "stream").open_stream("a")
    stream.feed([10.0, 10.2])
    before = stream.to_bytes()
    with pytest.raises(ValueError, match=r"chunk\[1\]: 1e\+308 is out of range"):
        stream.feed([10.1, 1e308])
    assert stream.to_bytes() == before and stream.steps == 2
    with pytest.raises(ValueError, match=r"chunk\[0\]: -1e\+308 is out of range"):
        stream.feed(-1e308)
    assert stream.to_bytes() == before and stream.steps == 2


def test_the_scaler_refuses_overflow_in_one_place():
    from elman.data.scaling import Scaler

    with pytest.raises(ValueError, match=r"series 'x' target: standard scaling overflows"):
        Scaler.fit(np.array([1e308, -1e308, 0.0]), "standard", "series 'x' target")
    scaler = Scaler.fit(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"v\[1\]: 1e\+300 is out of range"):
        scaler.scaled(np.array([1.0, 1e300]), "v")
    np.testing.assert_allclose(scaler.scaled(np.array([2.0])), [0.0])


# ---- 5. options the model or rule would ignore ---------------------------------------------
def test_options_that_would_be_ignored_are_refused(runs, capsys, tmp_path):
    future = tmp_path / "future.csv"
    future.write_text("x\n1\n2\n3\n4\n")
    model = str(runs / "model")
    refused(capsys, ["forecast", model, "--future", str(future)], "--future", "no known-future")
    cmd = ["detect", str(runs / "stream"), str(runs / "one.csv")]
    for risk in ("-1", "2"):
        refused(capsys, [*cmd, "--risk", risk], f"--risk {float(risk):g}", "--rule pot")
        refused(
            capsys, [*cmd, "--rule", "pot", "--risk", risk], "risk must be in (0, 1 - quantile)"
        )
    refused(capsys, [*cmd, "--quantile", "1.5"], "quantile must be in (0, 1), got 1.5")
    argv = ["backtest", model, str(runs / "all.csv"), "--origins", "1", "--stride", "2"]
    refused(capsys, argv, "--stride 2", "--origins 1")


def test_a_seed_for_a_direct_model_is_refused(runs, capsys, tmp_path):
    out = tmp_path / "direct"
    _train(runs / "first.csv", out, "--mode", "direct")
    refused(capsys, ["forecast", str(out), "--seed", "3"], "--seed", "direct-mode")
    capsys.readouterr()
    assert main(["forecast", str(out)]) == 0


# ---- 6. misleading messages -----------------------------------------------------------------
def test_plot_paths_name_the_problem(runs, capsys, tmp_path):
    model = str(runs / "model")
    refused(capsys, ["forecast", model, "--plot", str(tmp_path)], "--plot", "is a directory")
    err = refused(capsys, ["forecast", model, "--plot", str(tmp_path / "f.tmp")], "'.tmp'")
    assert ".png" in err and ".svg" in err
    assert list(tmp_path.iterdir()) == []


def test_a_bad_date_names_column_row_and_value(capsys, tmp_path):
    frame = _frame(shops=("a",))
    frame["day"] = frame["day"].astype(str)
    frame.loc[6, "day"] = "2020-13-45"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    args = ["train", "forecast", str(tmp_path / "bad.csv"), "--time-col", "day"]
    argv = [*args, "--out", str(tmp_path / "run"), *TINY, *RUN]
    refused(capsys, argv, "column 'day', row 7: '2020-13-45' is not a date")


def test_a_short_series_says_rows_needed_and_what_to_lower(capsys, tmp_path):
    _frame(days=5, shops=("a",)).to_csv(tmp_path / "five.csv", index=False)
    args = [
        "train",
        "forecast",
        str(tmp_path / "five.csv"),
        "--time-col",
        "day",
        "--target",
        "sales",
    ]
    argv = [*args, "--out", str(tmp_path / "run"), *TINY, *RUN]
    refused(capsys, argv, "has 5 rows", "12 + 4 + 4 = 20", "lower --context")


# ---- 7. backtests are out of sample ---------------------------------------------------------
def test_backtest_scores_only_origins_past_the_training_data(runs, capsys):
    # trained on days 0..59 (validation: 56..59), so targets are unseen after day 55
    capsys.readouterr()
    argv = ["backtest", str(runs / "model"), str(runs / "all.csv")]
    assert main([*argv, "--origins", "5", "--baselines"]) == 0
    result = json.loads(capsys.readouterr().out)
    origins = result["series"][0]["origins"]
    assert origins == [59, 63, 67, 71, 75] and min(origins) >= 55
    err = refused(capsys, [*argv, "--origins", "7"], "7 origin(s) 4 apart do not fit, only 6")
    assert "row 56" in err and "--valid-steps" in err
    refused(
        capsys,
        ["backtest", str(runs / "model"), str(runs / "first.csv"), "--origins", "2"],
        "only 1",
    )


# ---- 8. one switch for detection and streams ------------------------------------------------
def test_streamable_models_detect_and_stream_and_default_ones_say_how(runs, capsys):
    from elman.tasks.forecast.run import SPEC

    capsys.readouterr()
    assert main(["detect", str(runs / "stream"), str(runs / "one.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == DAYS
    run = SPEC.load(runs / "stream")
    assert not run.config.normalize and not run.config.calendar
    assert len(run.open_stream("a").feed([10.0, 10.5]).point) == 2
    refused(capsys, ["detect", str(runs / "model"), str(runs / "all.csv")], "--streamable")
    with pytest.raises(ValueError, match="--streamable"):
        SPEC.load(runs / "model").open_stream("a")
    args = ["train", "forecast", str(runs / "one.csv"), "--time-col", "day", "--streamable"]
    refused(
        capsys,
        [*args, "--mode", "direct", "--out", str(runs / "x"), *TINY],
        "--streamable",
        "--mode direct",
    )


# ---- 9. every series plotted ----------------------------------------------------------------
def test_plot_draws_a_panel_per_series_and_says_when_capped(runs, capsys, tmp_path, monkeypatch):
    from elman.viz import forecast as viz

    drawn = []
    monkeypatch.setattr(viz, "save_figure", lambda fig, path: drawn.append(fig) or path)
    capsys.readouterr()
    assert main(["forecast", str(runs / "model"), "--plot", str(tmp_path / "f.png")]) == 0
    (fig,) = drawn
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["a", "b"]
    assert "drew the first" not in capsys.readouterr().err
    monkeypatch.setattr(viz, "MAX_PANELS", 1)
    assert main(["forecast", str(runs / "model"), "--plot", str(tmp_path / "f.png")]) == 0
    assert "drew the first 1 of 2 series" in capsys.readouterr().err


# ---- 10. tampered checkpoint headers --------------------------------------------------------
def _tamper(out, how: str) -> None:
    for name in ("best", "last"):
        path = out / f"{name}.safetensors"
        tensors, meta = ckpt.load_checkpoint(path)
        if how == "list":
            text = "[1, 2]"
        elif how == "invalid":
            text = "{not json"
        elif how == "hidden":
            meta["task_config"]["model"]["hidden"] = 7
            text = json.dumps(meta)
        elif how == "task":
            text = json.dumps(meta | {"task": "charlm"})
        elif how == "source":
            meta["task_config"]["source"]["bogus"] = 1
            text = json.dumps(meta)
        else:
            meta["task_config"]["scalers"] = {"a": 1}
            text = json.dumps(meta)
        ckpt.save_file(tensors, str(path), metadata={"elman": text})


@pytest.mark.parametrize("how", ["list", "invalid", "hidden", "task", "scalers", "source"])
@pytest.mark.parametrize("command", ["forecast", "detect", "backtest", "resume"])
def test_a_tampered_header_is_one_line_naming_the_file(tmp_path, capsys, how, command):
    _frame(shops=("a",)).to_csv(tmp_path / "one.csv", index=False)
    out = tmp_path / "run"
    _train(tmp_path / "one.csv", out, "--streamable")
    _tamper(out, how)
    data = [] if command in ("forecast", "resume") else [str(tmp_path / "one.csv")]
    extra = ["--steps", "6"] if command == "resume" else []
    # a run of another task is named by its directory (`elman forecast` needs a forecast run)
    named = "holds a charlm model" if how == "task" and command != "resume" else ".safetensors'"
    refused(capsys, [command, str(out), *data, *extra], str(out), named)


# ---- 11. known-future covariates over the horizon ------------------------------------------
def test_a_model_with_future_covariates_forecasts_from_a_future_file(tmp_path, capsys):
    data = _frame(shops=("a",)).assign(promo=np.arange(DAYS) % 2 * 1.0)
    data.to_csv(tmp_path / "promo.csv", index=False)
    out = tmp_path / "promo"
    argv = ["train", "forecast", str(tmp_path / "promo.csv"), "--time-col", "day"]
    argv += ["--target", "sales", "--future-covariates", "promo", "--out", str(out), *TINY, *RUN]
    assert main(argv) == 0
    refused(capsys, ["forecast", str(out)], "reads 1 known-future covariate", "--future FILE")
    future = tmp_path / "future.csv"
    future.write_text("promo\n1\n0\n1\n")
    refused(capsys, ["forecast", str(out), "--future", str(future)], "with 4 rows", "3 row(s)")
    future.write_text("promo\n1\n0\n1\n0\n")
    capsys.readouterr()
    assert main(["forecast", str(out), "--future", str(future), "--seed", "3"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["time"] for r in rows] == ["2020-03-21", "2020-03-22", "2020-03-23", "2020-03-24"]
    assert all(np.isfinite(float(r["point"])) for r in rows)
