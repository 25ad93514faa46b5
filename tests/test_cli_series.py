"""The forecasting commands on a tiny configuration: train, forecast, backtest, resume."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from elman.cli import main

pd = pytest.importorskip("pandas")
TINY = ["--context", "12", "--horizon", "4", "--hidden", "8", "--layers", "1", "--samples", "10"]
RUN = ["--steps", "6", "--eval-every", "3", "--no-progress"]


@pytest.fixture()
def data(tmp_path):
    t = pd.date_range("2020-01-01", periods=80, freq="D")
    rng = np.random.default_rng(0)
    rows = [
        pd.DataFrame(
            {"day": t, "shop": k, "sales": 10 + np.sin(np.arange(80)) + rng.normal(0, 0.1, 80)}
        )
        for k in ("a", "b")
    ]
    pd.concat(rows).to_csv(tmp_path / "sales.csv", index=False)
    return tmp_path


def test_train_forecast_backtest_resume(data, capsys):
    out = data / "run"
    args = ["train", "forecast", str(data / "sales.csv"), "--time-col", "day", "--target", "sales"]
    assert (
        main([*args, "--id-col", "shop", "--id-embedding", "2", "--out", str(out), *TINY, *RUN])
        == 0
    )
    capsys.readouterr()
    png = data / "fc.png"
    assert main(["forecast", str(out), "--horizon", "3", "--plot", str(png)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["series"], r["step"]) for r in rows][:4] == [
        ("a", "1"),
        ("a", "2"),
        ("a", "3"),
        ("b", "1"),
    ]
    assert rows[0]["time"] == "2020-03-21" and float(rows[0]["q0.1"]) <= float(rows[0]["q0.9"])
    assert png.stat().st_size > 0
    assert main(["backtest", str(out), str(data / "sales.csv"), "--origins", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"model", "series", "naive", "seasonal_naive"}
    assert result["series"][0]["origins"] == [75]  # the last training step: out of sample
    assert main(["resume", str(out), "--steps", "8"]) == 0
    assert main(["evaluate", str(out)]) == 2
    assert "elman backtest" in capsys.readouterr().err


def test_bad_requests(data, capsys):
    out = data / "run"
    args = ["train", "forecast", str(data / "sales.csv"), "--time-col", "day", "--target", "sales"]
    assert main([*args, "--out", str(out), *TINY, *RUN]) == 2  # two shops, one day each: duplicates
    assert "duplicate timestamp" in capsys.readouterr().err
    assert main([*args, "--id-col", "shop", "--out", str(out), *TINY, *RUN]) == 0
    capsys.readouterr()
    assert main(["forecast", str(out), "--horizon", "9"]) == 2
    assert "--horizon must be in 1..4" in capsys.readouterr().err
    short = data / "short.csv"
    short.write_text("day,shop,sales\n2020-01-01,a,1\n2020-01-02,a,2\n2020-01-03,a,3\n")
    assert main(["backtest", str(out), str(short)]) == 2
    assert "need at least" in capsys.readouterr().err


def test_detect_writes_scores_flags_and_metrics(tmp_path, capsys):
    rng = np.random.default_rng(1)
    y = np.sin(np.arange(160) / 3) + rng.normal(0, 0.05, 160)
    labels = np.zeros(160, dtype=int)
    y[150], labels[150] = 4.0, 1
    pd.DataFrame({"value": y[:120]}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"value": y, "label": labels}).to_csv(tmp_path / "all.csv", index=False)
    out = tmp_path / "run"
    args = ["train", "forecast", str(tmp_path / "train.csv"), "--target", "value", "--no-calendar"]
    args += ["--no-normalize"]
    assert main([*args, "--out", str(out), *TINY, *RUN]) == 0
    capsys.readouterr()
    metrics = tmp_path / "m.json"
    cmd = ["detect", str(out), str(tmp_path / "all.csv"), "--label-col", "label"]
    assert main([*cmd, "--metrics", str(metrics)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 160 and rows[0]["score"] == "0" and set(rows[0]) >= {"flag", "time"}
    result = json.loads(metrics.read_text())
    assert 0 <= result["pr_auc"] <= 1 and "adjusted_f1" in result
    wild = y.copy()
    wild[120:] *= 50  # only the part after training differs: the threshold must not move
    pd.DataFrame({"value": wild, "label": labels}).to_csv(tmp_path / "wild.csv", index=False)
    cmd = ["detect", str(out), str(tmp_path / "wild.csv"), "--label-col", "label"]
    assert main([*cmd, "--metrics", str(tmp_path / "w.json")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "w.json").read_text())["threshold"] == result["threshold"]
    cmd = ["detect", str(out), str(tmp_path / "all.csv"), "--adapt", "0.05", "--no-replace"]
    assert main([*cmd, "--rule", "pot", "--quantile", "0.9", "--smooth", "3"]) == 0
    capsys.readouterr()
    assert main(cmd) == 0
    adapted = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert adapted[100]["score"] != rows[100]["score"]  # rescaled by the running scale
    assert main([*cmd[:3], "--adapt", "0.05", "--score", "nll"]) == 2
    assert "adapt rescales residuals" in capsys.readouterr().err
    direct = tmp_path / "direct"
    assert main([*args, "--mode", "direct", "--out", str(direct), *TINY, *RUN]) == 0
    capsys.readouterr()
    assert main(["detect", str(direct), str(tmp_path / "all.csv")]) == 2
    assert "autoregressive" in capsys.readouterr().err
